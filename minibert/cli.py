"""The command-line conventions every ``minibert``/``textcnn`` command shares.

* the ``minibert`` dispatcher: each sub-command lives in the module that
  implements it and exposes ``main(argv, prog)``; this file only dispatches,
  so ``minibert pretrain --help`` and ``python -m minibert.pretrain --help``
  print the same thing;
* :class:`CLIError`: bad input, whose message is one sentence saying what was
  wrong, where, and what to do;
* :class:`ArgumentParser` + :class:`HelpFormatter`: ``--help`` shows the
  defaults, and a parse error is one line ``prog: error: ...`` (exit 2);
* argument checks for ``type=``: :func:`positive_int`, :func:`non_negative_int`,
  :func:`positive_float`, :func:`non_negative_float`, :func:`finite_float`,
  :func:`probability`, :func:`dropout_probability`, :func:`open_fraction`;
  every option is validated while parsing, before any work;
* :func:`run_command`: parse, run, and turn :class:`CLIError` (and the
  command's other known errors) into ``prog: error: <sentence>`` on stderr
  with exit 2, and Ctrl-C into one line with exit 130.
"""

from __future__ import annotations

import argparse
import importlib
import math
import sys
from typing import Callable

EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


class CLIError(ValueError):
    """Bad input or state: the message is one sentence saying what was wrong and what to do.

    A ``ValueError``, so library callers that catch ``ValueError`` (bad
    argument values) keep working when a library function raises it.
    """


# ----------------------------------------------------------------------------
# parser and help


class HelpFormatter(argparse.HelpFormatter):
    """Append "(default: X)" to an option's help when the default means something.

    Flags (``store_true``/``store_false``) never get one: ``--no-bucket`` has
    the default ``True`` for the attribute it clears, which would read as the
    opposite of what the flag does.
    """

    def _get_help_string(self, action):
        text = action.help or ""
        if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
            return text
        meaningless = action.default is None or action.default is False or action.default in ([], "", argparse.SUPPRESS)
        if "default" not in text and not meaningless:
            text += " (default: %(default)s)"
        return text


class ArgumentParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` whose errors are one line: ``prog: error: <message>``, exit 2.

    (argparse's own prints the usage block first, so the error is several
    lines on stderr; the usage stays one ``--help`` away.)
    """

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        kwargs.setdefault("allow_abbrev", False)   # so given_options() sees every option by its full name
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        message = message.rstrip(".")
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message}; see '{self.prog} --help'.\n")


def given_options(parser: argparse.ArgumentParser, argv: list[str] | None) -> set[str]:
    """The ``dest`` names of the options written on the command line ``argv`` (not left at their default).

    ``--resume`` uses it to tell "the user asked for this value" from "the
    parser's default", so stored run settings win unless given explicitly.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    words = {word.split("=", 1)[0] for word in argv if word.startswith("-")}
    return {action.dest for action in parser._actions if words & set(action.option_strings)}


# ----------------------------------------------------------------------------
# argument checks (argparse ``type=`` functions)


def _checked(text: str, kind: type, what: str, ok=lambda value: True):
    """``kind(text)`` if it parses, is finite (floats) and passes ``ok``; else an error naming ``text``."""
    try:
        value = kind(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number; give {what}")
    if not ok(value):
        raise argparse.ArgumentTypeError(f"must be {what}, not {text}")
    return value


def positive_int(text: str) -> int:
    """An integer >= 1."""
    return _checked(text, int, "an integer >= 1", lambda v: v >= 1)


def non_negative_int(text: str) -> int:
    """An integer >= 0."""
    return _checked(text, int, "an integer >= 0", lambda v: v >= 0)


def finite_float(text: str) -> float:
    """Any real number except nan and +-inf."""
    return _checked(text, float, "a finite number")


def positive_float(text: str) -> float:
    """A finite number > 0."""
    return _checked(text, float, "a number > 0", lambda v: v > 0)


def non_negative_float(text: str) -> float:
    """A finite number >= 0."""
    return _checked(text, float, "a number >= 0", lambda v: v >= 0)


def probability(text: str) -> float:
    """A probability p with 0 < p <= 1 (zero would select nothing)."""
    return _checked(text, float, "a probability with 0 < p <= 1", lambda v: 0.0 < v <= 1.0)


def dropout_probability(text: str) -> float:
    """A dropout rate p with 0 <= p < 1 (one would drop everything)."""
    return _checked(text, float, "a dropout rate with 0 <= p < 1", lambda v: 0.0 <= v < 1.0)


def open_fraction(text: str) -> float:
    """A fraction f with 0 < f < 1 (e.g. the share of the training data held out as dev)."""
    return _checked(text, float, "a fraction with 0 < f < 1", lambda v: 0.0 < v < 1.0)


# ----------------------------------------------------------------------------
# running a command


def error_line(prog: str, message) -> str:
    """``prog: error: <message>`` on one line, ending with a full stop."""
    text = " ".join(str(message).split())
    return f"{prog}: error: {text.rstrip('.')}."


def run_command(prog: str, parser: argparse.ArgumentParser, run: Callable, argv: list[str] | None = None,
                known_errors: tuple = (), on_interrupt: Callable | None = None) -> int:
    """Parse ``argv`` with ``parser``, call ``run(args)`` and return the exit code.

    * :class:`CLIError` and the exception types in ``known_errors`` (whose
      messages are one sentence) become ``prog: error: <sentence>``, exit 2;
    * an ``OSError`` (disk full, permission denied while writing) becomes one
      line naming the file, exit 1;
    * Ctrl-C becomes one line, exit 130: ``on_interrupt(args)`` says where the
      last checkpoint is and how to resume (default: "interrupted").

    ``run`` may return an ``int`` exit code; anything else means 0.
    """
    args = parser.parse_args(argv)
    try:
        result = run(args)
    except (CLIError, *known_errors) as exc:
        print(error_line(prog, exc), file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        text = on_interrupt(args) if on_interrupt else "interrupted"
        print(f"{prog}: {text}", file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED
    except OSError as exc:
        where = f" at {exc.filename}" if exc.filename else ""
        print(error_line(prog, f"{exc.strerror or exc}{where}; free space or fix the permissions, then rerun "
                               f"(with --resume if the command has it)"), file=sys.stderr)
        return 1
    return result if isinstance(result, int) else 0


# ----------------------------------------------------------------------------
# the ``minibert`` dispatcher

COMMANDS = {
    "pretrain": ("minibert.pretrain", "pretrain a mini-BERT with MLM + NSP on WikiText"),
    "export": ("minibert.hf", "convert a minibert checkpoint to a transformers folder"),
    "finetune": ("minibert.finetune", "train a sentence classifier: fine-tune, linear probe, or from scratch"),
    "classify": ("minibert.classify", "classify sentences with a model trained by `minibert finetune`"),
}


def _usage(prog: str, commands: dict) -> str:
    lines = [f"usage: {prog} <command> [options]", "", "commands:"]
    width = max(len(name) for name in commands)
    for name, (_, help_text) in commands.items():
        lines.append(f"  {name.ljust(width)}  {help_text}")
    lines += ["", f"Run '{prog} <command> --help' for the options of one command."]
    return "\n".join(lines)


def dispatch(prog: str, commands: dict, argv: list[str] | None = None) -> int:
    """Run ``prog <command> ...`` by calling ``commands[command]``'s ``main``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage(prog, commands))
        return 0
    name, rest = argv[0], argv[1:]
    if name not in commands:
        print(f"{prog}: error: unknown command {name!r}; choose one of: {', '.join(commands)}.",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    module = importlib.import_module(commands[name][0])
    result = module.main(rest, prog=f"{prog} {name}")
    return int(result or 0)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``minibert`` console script."""
    return dispatch("minibert", COMMANDS, argv)


if __name__ == "__main__":
    sys.exit(main())
