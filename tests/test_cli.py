"""The command-line conventions: argument checks, --help defaults, one-line errors, Ctrl-C, dispatch."""

from __future__ import annotations

import argparse

import pytest

from minibert.cli import (ArgumentParser, CLIError, dropout_probability, finite_float, non_negative_float,
                          non_negative_int, open_fraction, positive_float, positive_int, probability,
                          run_command)

CHECKS = [
    (positive_int, ["1", "7"], ["0", "-1", "1.5", "x"]),
    (non_negative_int, ["0", "3"], ["-1", "nan"]),
    (positive_float, ["1e-3", "2"], ["0", "-1", "nan", "inf", "-inf"]),
    (non_negative_float, ["0", "0.5"], ["-1", "nan", "inf"]),
    (finite_float, ["-2.5", "0"], ["nan", "inf", "abc"]),
    (probability, ["1", "0.15"], ["0", "1.01", "-0.1", "nan"]),
    (dropout_probability, ["0", "0.5"], ["1", "-0.1", "nan"]),
    (open_fraction, ["0.1", "0.9"], ["0", "1", "nan"]),
]


@pytest.mark.parametrize("check,good,bad", CHECKS, ids=[c[0].__name__ for c in CHECKS])
def test_argument_checks_accept_their_range_and_name_the_bad_value(check, good, bad):
    for text in good:
        check(text)
    for text in bad:
        with pytest.raises(argparse.ArgumentTypeError) as info:
            check(text)
        assert text in str(info.value), f"{check.__name__}({text!r}): {info.value}"


def parser() -> ArgumentParser:
    p = ArgumentParser(prog="demo")
    p.add_argument("--lr", type=positive_float, default=1.0, help="learning rate")
    p.add_argument("--no-bucket", dest="bucket", action="store_false", help="plain batches")
    p.add_argument("--fast", action="store_true", help="go fast")
    return p


def test_help_shows_defaults_but_not_for_flags():
    text = parser().format_help()
    assert "learning rate (default: 1.0)" in text, text
    assert "plain batches\n" in text and "default: True" not in text and "default: False" not in text, text


def test_a_parse_error_is_one_line_naming_the_option(capsys):
    with pytest.raises(SystemExit) as info:
        parser().parse_args(["--lr", "-1"])
    err = capsys.readouterr().err
    assert info.value.code == 2
    assert err.count("\n") == 1 and err.startswith("demo: error: argument --lr: ") and "-1" in err, err


def test_run_command_turns_errors_and_ctrl_c_into_one_line(capsys):
    def fail(args):
        raise CLIError("the thing is wrong; fix it")

    assert run_command("demo", parser(), fail, []) == 2
    assert capsys.readouterr().err == "demo: error: the thing is wrong; fix it.\n"

    def interrupted(args):
        raise KeyboardInterrupt

    assert run_command("demo", parser(), interrupted, [], on_interrupt=lambda a: "stopped; resume with X") == 130
    assert capsys.readouterr().err == "demo: stopped; resume with X\n"

    def disk_full(args):
        raise OSError(28, "No space left on device", "/tmp/x.pt")

    assert run_command("demo", parser(), disk_full, []) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "/tmp/x.pt" in err and "No space left" in err, err

    class DataError(ValueError):
        pass

    assert run_command("demo", parser(), lambda a: (_ for _ in ()).throw(DataError("bad file x")), [],
                       known_errors=(DataError,)) == 2
    assert capsys.readouterr().err == "demo: error: bad file x.\n"
    assert run_command("demo", parser(), lambda a: 3, []) == 3


def test_the_dispatcher_names_an_unknown_command(capsys):
    from minibert.cli import main

    assert main(["nope"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'nope'" in err and "pretrain" in err, err
