"""Every command's ``--help`` shows examples and the default of every option that takes a value."""

from __future__ import annotations

import argparse

import pytest

from distalign.cli import build_parser

COMMANDS = ["data", "cache", "model", "toy", "report", "import", "reproduce"]


def _parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """The parser and the parsers of its actions (``data info``, ``cache clear``, ...)."""
    out = [parser]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):
                out.extend(_parsers(sub))
    return out


@pytest.mark.parametrize("command", COMMANDS)
def test_help_shows_examples_and_every_default(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    top = build_parser([command])
    (sub,) = [a for a in top._actions if isinstance(a, argparse._SubParsersAction)]
    for parser in _parsers(sub.choices[command]):
        text = parser.format_help()
        assert "examples:\n  distalign " + command in text, parser.prog
        formatter = parser._get_formatter()
        for action in parser._actions:
            takes_value = action.option_strings and action.nargs != 0 and not action.required
            if takes_value:
                shown = formatter._get_help_string(action) % {"default": action.default}
                assert "default" in shown.lower(), f"{parser.prog} {action.option_strings[0]}: {shown!r}"
    with pytest.raises(SystemExit) as done:
        top.parse_args([command, "--help"])
    assert done.value.code == 0 and "examples:" in capsys.readouterr().out
