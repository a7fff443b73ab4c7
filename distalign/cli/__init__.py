"""The ``distalign`` console command.

Each subcommand is a module of this package exposing ``register(subparsers)``, which adds its parser and
sets ``func(args) -> int``. Only the module of the command being run is imported (by name, from
``COMMANDS``), so ``distalign --help`` and a mistyped command answer without loading pandas, MLflow or
torch.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from distalign import __version__
from distalign.errors import InputError

#: command -> (module that registers it, one-line help shown by ``distalign --help``)
COMMANDS: dict[str, tuple[str, str]] = {
    "data": ("distalign.cli.data", "list, download and inspect survey datasets"),
    "score": ("distalign.cli.score", "score a predictions file (JSONL, CSV or Parquet) into a leaderboard"),
    "report": (
        "distalign.cli.report",
        "tables and figures (HTML, Markdown, CSV) of a sweep folder, MLflow run or predictions file",
    ),
    "baselines": ("distalign.cli.baselines", "uniform, majority and 30-sample baselines with 95% intervals"),
    "calibrate": ("distalign.cli.calibrate", "temperature or regression calibration of a predictions file"),
    "cache": ("distalign.cli.cache", "inspect or clear the response store"),
    "model": ("distalign.cli.model", "prepare local models"),
    "batches": ("distalign.cli.batches", "list or cancel a sweep's provider batches (batch mode)"),
    "toy": ("distalign.cli.toy", "the biased-coin toy problem (the benchmark's Figure 2)"),
    "import": (
        "distalign.cli.import_meister",
        "import a benchmark release's model outputs or a sweep's raw answers as a predictions file",
    ),
    "reproduce": (
        "distalign.cli.reproduce",
        "regenerate a paper's tables and figure data from its public release",
    ),
}

EPILOG = """examples:
  distalign data list
  distalign score predictions.jsonl --data-dir ~/meister2024 --out results/
  distalign report outputs/my-sweep --out report/
  distalign calibrate predictions.jsonl --method regression
  distalign reproduce meister2024 --data-dir ~/meister2024 --out reproduction/
sweeps run with: python launch.py -m model=smollm2_135m method=seq,verbalize"""


def _chosen(argv: Sequence[str]) -> str | None:
    """The subcommand named on the command line (the first argument that is not an option)."""
    return next((a for a in argv if not a.startswith("-")), None)


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser; the named command (every command when ``argv`` is None) gets its full arguments, the
    others only their name and help line."""
    parser = argparse.ArgumentParser(
        prog="distalign",
        description="Measure and improve how well LLMs reproduce the distribution of a human group's survey "
        "answers. Sweeps run with `python launch.py -m ...`; these commands manage data, score, calibrate "
        "and inspect.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"distalign {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    chosen = None if argv is None else _chosen(argv)
    for name, (module, help_text) in COMMANDS.items():
        if argv is None or name == chosen:
            importlib.import_module(module).register(sub)
        else:
            # argparse %-formats help strings ("95% intervals" would crash --help)
            sub.add_parser(name, help=help_text.replace("%", "%%"), add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    if argv is None:  # the console command, not a call from Python: see ``collector``
        from distalign.cli.collector import tune_for_a_command

        tune_for_a_command()
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
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
