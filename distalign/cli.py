"""The ``distalign`` console command. Each subcommand lives beside the concept it serves and exposes
``register(subparsers)``, which adds its parser and sets ``func(args) -> int``."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from distalign import __version__
from distalign.errors import InputError

SUBCOMMAND_MODULES: tuple[str, ...] = (
    "distalign.survey.cli",  # data list|download|info
    "distalign.report.cli",  # score, baselines
    "distalign.engines.cli",  # cache stats|export|clear, model prepare
    "distalign.calibration.cli",  # calibrate
    "distalign.methods.cli",  # toy (biased coin)
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="distalign",
        description="Measure and improve how well LLMs reproduce the distribution of a human group's survey "
        "answers. Sweeps run with `python launch.py -m ...`; these commands manage data, score, calibrate "
        "and inspect.",
    )
    parser.add_argument("--version", action="version", version=f"distalign {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except InputError as exc:
        print(f"distalign {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
