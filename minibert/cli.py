"""The ``minibert`` command: one sub-command per job.

Each sub-command lives in the module that implements it and exposes
``main(argv)``; this file only dispatches, so ``minibert pretrain --help`` and
``python -m minibert.pretrain --help`` print the same thing.
"""

from __future__ import annotations

import importlib
import sys

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
        print(f"{prog}: unknown command {name!r}; choose one of: {', '.join(commands)}.",
              file=sys.stderr)
        return 2
    module = importlib.import_module(commands[name][0])
    result = module.main(rest, prog=f"{prog} {name}")
    return int(result or 0)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``minibert`` console script."""
    return dispatch("minibert", COMMANDS, argv)


if __name__ == "__main__":
    sys.exit(main())
