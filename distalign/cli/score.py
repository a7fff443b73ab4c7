"""``distalign score``: the leaderboard of any predictions file (a sweep's output, another tool's, human
annotators' estimates), plus the helpers ``distalign baselines`` shares with it."""

from __future__ import annotations

import argparse
import json
import math
import sys
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from distalign.cli.outputs import check_output
from distalign.records.config import UNPARSED_POLICIES
from distalign.report.render import print_leaderboard
from distalign.scoring.predictions import PredictionsWarning, datasets_in, read_predictions
from distalign.scoring.score import score_predictions
from distalign.scoring.scores import baseline_rows, kss_table, leaderboard
from distalign.survey.model import DATASETS
from distalign.survey.paths import ENV_VAR, FIXTURE_ALIAS
from distalign.survey.registry import surveys_for

DATA_DIR_HELP = (
    f"release root folder (default: ${ENV_VAR}, else ~/.cache/distalign/data; '{FIXTURE_ALIAS}' = sample)"
)
EPILOG = """examples:
  distalign score predictions.jsonl --data-dir ~/meister2024 --out results/
  distalign score preds.csv --survey my_survey.json --unparsed exclude --json board.json
  distalign score preds.parquet --strict        # unevaluated groups and repeated rows are errors

Rows naming a group the benchmark does not evaluate on an item are skipped, a row repeated with the
same values counts once (a warning says how many; --strict makes both errors), and probabilities with
no mass on any option count as a failed extraction (--unparsed).
File format: distalign/scoring/PREDICTIONS_FORMAT.md"""


class Formatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the epilog's line breaks."""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "score",
        help="score a predictions file (JSONL, CSV or Parquet) into a leaderboard",
        description="Score a predictions file against the human group distributions: mean total variation\n"
        "with 95% bootstrap intervals per model x method x steering x dataset, the knowledge-to-\n"
        "simulation gap and the benchmark's baselines.",
        epilog=EPILOG,
        formatter_class=Formatter,
    )
    p.add_argument("predictions", type=Path, help="predictions file: .jsonl, .csv or .parquet")
    p.add_argument("--data-dir", metavar="DIR", default=None, help=DATA_DIR_HELP)
    p.add_argument(
        "--survey",
        metavar="FILE",
        type=Path,
        action="append",
        default=[],
        help="a custom survey file, repeatable (default: none; the file's benchmark datasets are loaded)",
    )
    p.add_argument(
        "--out",
        metavar="DIR",
        type=Path,
        default=None,
        help="folder for leaderboard/KSS/baselines/scores as CSV + JSON (default: none, print only)",
    )
    p.add_argument(
        "--json",
        metavar="FILE",
        type=Path,
        default=None,
        help="write the leaderboard rows as JSON here (default: none)",
    )
    p.add_argument(
        "--unparsed",
        metavar="{" + ",".join(UNPARSED_POLICIES) + "}",
        choices=UNPARSED_POLICIES,
        default="uniform",
        help="how failed extractions score: as uniform, left out of the means, or as a one-hot on the "
        "least likely human option (default: %(default)s)",
    )
    p.add_argument(
        "--strict",
        action="store_true",
        help="rows with no human distribution, repeated rows and probabilities with no mass are errors "
        "(default: skipped / counted once / unparsed, with a warning)",
    )
    bootstrap_args(p)
    p.set_defaults(func=cmd_score)


def bootstrap_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--n-resamples",
        metavar="N",
        type=int,
        default=1000,
        help="bootstrap resamples (default: %(default)s)",
    )
    p.add_argument("--seed", metavar="N", type=int, default=0, help="bootstrap seed (default: %(default)s)")


def write_rows(
    rows: Sequence[dict[str, Any]], json_path: Path | None = None, csv_path: Path | None = None
) -> None:
    for path in (json_path, csv_path):
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
    if json_path is not None:
        clean = [
            {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()} for r in rows
        ]
        json_path.write_text(json.dumps(clean, indent=1) + "\n", encoding="utf-8")
    if csv_path is not None:
        pd.DataFrame(list(rows)).to_csv(csv_path, index=False)


def _vectors_text(column: pd.Series) -> list[str | None]:
    """Distributions as the JSON lists a reader loads back, to 6 decimals (``None``: no prediction);
    rounded a block of equal width at a time, as one row at a time costs seconds on the release."""
    values = column.tolist()
    out: list[str | None] = [None] * len(values)
    by_width: dict[int, list[int]] = {}
    for i, v in enumerate(values):
        if v is not None:
            by_width.setdefault(len(v), []).append(i)
    for rows in by_width.values():
        block = np.round(np.stack([values[i] for i in rows]).astype(float), 6)
        finite = np.isfinite(block).all(axis=1).tolist()
        for i, row, plain in zip(rows, block.tolist(), finite, strict=True):
            # the repr of a finite float is its JSON text; json writes NaN and Infinity its own way
            out[i] = "[" + ", ".join(map(repr, row)) + "]" if plain else json.dumps(row)
    return out


def write_scores(scored: pd.DataFrame, path: Path) -> None:
    """The scored rows, one pair per line, distributions as JSON lists (``scores.csv`` of ``--out``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    flat = scored.assign(pred=_vectors_text(scored["pred"]), human=_vectors_text(scored["human"]))
    flat.to_csv(path, index=False)


class Steps:
    """The command's steps on stderr, with a bar where their size is known; shown only when stderr is a
    terminal (never in pipes, logs or tests), and cleared when done."""

    def __init__(self) -> None:
        self.bar = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=True,
            disable=not sys.stderr.isatty(),
        )
        self.task: Any = None

    def __enter__(self) -> Steps:
        self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()

    def step(self, description: str) -> None:
        if self.task is not None:
            self.bar.update(self.task, total=1, completed=1)
        self.task = self.bar.add_task(description, total=None)

    def advance(self, done: int, total: int) -> None:
        self.bar.update(self.task, total=total, completed=done)


@contextmanager
def warnings_on_stderr(command: str) -> Iterator[None]:
    """Each ``PredictionsWarning`` as one line on stderr, ``distalign COMMAND: warning: ...``; other
    warnings are issued again, after, as they were."""
    caught: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as caught:  # type: ignore[assignment]
            warnings.simplefilter("always", PredictionsWarning)
            yield
    finally:
        for w in caught:
            if issubclass(w.category, PredictionsWarning):
                print(f"distalign {command}: warning: {w.message}", file=sys.stderr)
            else:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def cmd_score(args: argparse.Namespace) -> int:
    check_output(args.out, "--out", folder=True)
    check_output(args.json, "--json")
    with warnings_on_stderr("score"), Steps() as steps:
        steps.step(f"reading {args.predictions.name}")
        df = read_predictions(args.predictions)
        steps.step("loading surveys")
        surveys = surveys_for(datasets_in(df, args.predictions), args.data_dir, args.survey)
        steps.step(f"checking {len(df):,} rows, parsing responses")
        scored = score_predictions(
            df,
            surveys,
            unparsed=args.unparsed,
            source=args.predictions,
            strict=args.strict,
            unique=True,
            progress=steps.advance,
        )
        steps.step(f"bootstrap intervals ({args.n_resamples} resamples)")
        order = [d for d in DATASETS if d in surveys] + [d for d in surveys if d not in DATASETS]
        rows = leaderboard(scored, order, n_resamples=args.n_resamples, seed=args.seed)
        base = baseline_rows(surveys, order, n_resamples=args.n_resamples, seed=args.seed)
        kss = kss_table(rows)
    console = Console()
    print_leaderboard([*rows, *base], kss, console)
    write_rows([*rows, *base], args.json)
    if args.out is not None:
        out: Path = args.out
        write_rows([*rows, *base], out / "leaderboard.json", out / "leaderboard.csv")
        write_rows(kss, out / "kss.json", out / "kss.csv")
        write_rows(base, out / "baselines.json", out / "baselines.csv")
        write_scores(scored, out / "scores.csv")
        console.print(f"wrote {out}/leaderboard.{{json,csv}}, kss.*, baselines.*, scores.csv")
    return 0


__all__ = ["cmd_score", "register"]
