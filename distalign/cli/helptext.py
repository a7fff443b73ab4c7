"""One look for every command's ``--help``: examples below the options and every option's default."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the examples' line breaks and adds ``(default: X)`` to an option whose help does not already
    say what its default is (flags and options without a value are left alone)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (
            "default" not in text.lower()
            and action.option_strings
            and action.nargs != 0
            and action.default not in (None, argparse.SUPPRESS, [])
        ):
            text += " (default: %(default)s)"
        return text


def examples(*lines: str) -> str:
    return "examples:\n" + "\n".join(f"  {line}" for line in lines)


def add_command(subparsers: Any, name: str, help_text: str, example_lines: Sequence[str]) -> Any:
    """A command's parser (or an action's, under a command) with the shared formatter and its examples."""
    return subparsers.add_parser(
        name,
        help=help_text,
        description=help_text[:1].upper() + help_text[1:].replace("%%", "%") + ".",
        epilog=examples(*example_lines),
        formatter_class=HelpFormatter,
    )
