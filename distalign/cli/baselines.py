"""``distalign baselines``: the benchmark's uniform, majority and 30-sample baselines per dataset."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from distalign.cli.outputs import check_output
from distalign.cli.score import DATA_DIR_HELP, Formatter, bootstrap_args, write_rows
from distalign.errors import InputError
from distalign.report.render import BASELINE_COLUMNS, table
from distalign.scoring.scores import baseline_rows
from distalign.survey.model import DATASETS
from distalign.survey.registry import DATASET_LOADERS, load_survey

EPILOG = """examples:
  distalign baselines --data-dir ~/meister2024
  distalign baselines --datasets opinionqa,nyt_books --json baselines.json --csv baselines.csv
  distalign baselines --data-dir fixture --n-resamples 200 --seed 1

Rows: uniform, majority (one-hot on the most likely human option) and discretization_30 (the expected
TV of 30 samples from the human distribution), per dataset and over the datasets."""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "baselines",
        help="uniform, majority and 30-sample baselines with 95%% intervals",
        description="The benchmark's reference rows: mean total variation over (item, group) pairs of the\n"
        "uniform, majority and 30-sample baselines, with 95% bootstrap intervals.",
        epilog=EPILOG,
        formatter_class=Formatter,
    )
    p.add_argument(
        "--datasets",
        metavar="NAMES",
        default=",".join(DATASETS),
        help="comma-separated dataset names (default: %(default)s)",
    )
    p.add_argument("--data-dir", metavar="DIR", default=None, help=DATA_DIR_HELP)
    p.add_argument(
        "--json", metavar="FILE", type=Path, default=None, help="write the rows as JSON here (default: none)"
    )
    p.add_argument(
        "--csv", metavar="FILE", type=Path, default=None, help="write the rows as CSV here (default: none)"
    )
    bootstrap_args(p)
    p.set_defaults(func=cmd_baselines)


def _datasets(spec: str) -> list[str]:
    names = [n.strip() for n in spec.split(",") if n.strip()]
    unknown = [n for n in names if n not in DATASET_LOADERS]
    if not names or unknown:
        raise InputError(
            f"unknown dataset {unknown[0] if unknown else spec!r}; known: {', '.join(DATASET_LOADERS)}",
            where="--datasets",
        )
    return names


def cmd_baselines(args: argparse.Namespace) -> int:
    names = _datasets(args.datasets)
    check_output(args.json, "--json")
    check_output(args.csv, "--csv")
    surveys = {n: load_survey(n, args.data_dir) for n in names}
    rows = baseline_rows(surveys, names, n_resamples=args.n_resamples, seed=args.seed)
    Console().print(table("Baselines: mean TV over (item, group) pairs", rows, BASELINE_COLUMNS))
    write_rows(rows, args.json, args.csv)
    return 0
