"""``distalign import meister2024|SWEEP``: the benchmark release's model outputs (and, optionally, its human
annotators' estimates), or a sweep folder's raw answers (with the options as shown and each method's
parameters, so they score as the sweep scored them), as one predictions file that ``distalign score``
reads."""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from distalign.cli.helptext import add_command
from distalign.cli.outputs import check_output
from distalign.cli.score import DATA_DIR_HELP
from distalign.errors import InputError
from distalign.report.meister2024.humans import human_predictions
from distalign.report.meister2024.predictions_file import write_predictions
from distalign.report.meister2024.release import COLUMNS, import_release
from distalign.scoring.results import CELLS, raw_predictions
from distalign.survey.parsing import TABLE_SUFFIXES

SOURCES = ("meister2024",)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_command(
        subparsers,
        "import",
        "import a benchmark release's model outputs or a sweep's raw answers as a predictions file",
        (
            "distalign import meister2024 --data-dir ~/meister2024 --out meister2024.parquet",
            "distalign import meister2024 --data-dir ~/meister2024 --out with_humans.jsonl --humans",
            "distalign import .distalign/sweeps/demo-0123abcd --out raw_answers.jsonl",
        ),
    )
    p.add_argument(
        "source",
        help="the release to import (meister2024) or a sweep output folder (with cells/): its raw answers",
    )
    p.add_argument("--data-dir", default=None, help=DATA_DIR_HELP)
    p.add_argument(
        "--out",
        type=Path,
        required=True,
        help=f"predictions file ({', '.join(TABLE_SUFFIXES)}); see PREDICTIONS_FORMAT.md",
    )
    p.add_argument(
        "--humans", action="store_true", help="also the human annotators' estimates (model 'human', Table 2)"
    )
    p.set_defaults(func=cmd_import)


def cmd_import(args: argparse.Namespace) -> int:
    out: Path = args.out
    if out.suffix.lower() not in TABLE_SUFFIXES:  # before reading 60 MB of JSON
        known = ", ".join(TABLE_SUFFIXES)
        raise InputError(f"unknown predictions format {out.suffix!r} (use {known})", where="--out")
    check_output(out, "--out")
    if args.source not in SOURCES:
        folder = Path(args.source)
        if not (folder / CELLS).is_dir():
            raise InputError(
                f"neither a release ({', '.join(SOURCES)}) nor a sweep output folder (no {CELLS}/ inside)",
                where=args.source,
            )
        if args.humans:
            raise InputError("--humans applies to a release, not to a sweep", where="--humans")
        df = raw_predictions(folder)
    else:
        df = import_release(args.data_dir)
    if args.humans:
        humans = human_predictions(args.data_dir)
        df = pd.concat([df, humans[[c for c in COLUMNS if c in humans]]], ignore_index=True)
    write_predictions(df, out)
    counts = df.groupby(["model", "method"]).size()
    for (model, method), n in counts.items():
        print(f"  {model:<20} {method:<22} {n:>6,}")
    print(f"wrote {len(df):,} predictions to {out}")
    return 0


__all__ = ["cmd_import", "register"]
