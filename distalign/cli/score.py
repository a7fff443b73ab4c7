"""``distalign baselines`` and ``distalign score``: the benchmark's reference rows, and the leaderboard
of any predictions file (a sweep's output, another tool's, human annotators' estimates)."""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console

from distalign.report.leaderboard import baseline_rows, kss_table, leaderboard
from distalign.report.render import print_leaderboard
from distalign.scoring.predictions import datasets_in, read_predictions
from distalign.scoring.score import UNPARSED_POLICIES, score_predictions
from distalign.survey.model import DATASETS, Survey
from distalign.survey.paths import ENV_VAR, FIXTURE_ALIAS
from distalign.survey.registry import DATASET_LOADERS, load_survey

DATA_DIR_HELP = (
    f"release root folder (default: ${ENV_VAR}, else ~/.cache/distalign/data; '{FIXTURE_ALIAS}' = sample)"
)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "score", help="score a predictions file (JSONL, CSV or Parquet) into a leaderboard"
    )
    p.add_argument("predictions", type=Path, help="see distalign/scoring/PREDICTIONS_FORMAT.md")
    p.add_argument("--data-dir", default=None, help=DATA_DIR_HELP)
    p.add_argument(
        "--survey", type=Path, action="append", default=[], help="a custom survey file (repeatable)"
    )
    p.add_argument(
        "--out", type=Path, default=None, help="folder for leaderboard/KSS/baselines/scores (CSV + JSON)"
    )
    p.add_argument("--json", type=Path, default=None, help="write the leaderboard rows as JSON here")
    p.add_argument(
        "--unparsed", choices=UNPARSED_POLICIES, default="uniform", help="how unparsed answers score"
    )
    bootstrap_args(p)
    p.set_defaults(func=cmd_score)


def bootstrap_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--n-resamples", type=int, default=1000, help="bootstrap resamples (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed")


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


def _surveys_for(df: pd.DataFrame, args: argparse.Namespace) -> dict[str, Survey]:
    """Benchmark datasets the file names, plus custom surveys; unknown names are reported per row later."""
    surveys: dict[str, Survey] = {}
    for path in args.survey:
        s = load_survey("custom", path=path)
        surveys[s.name] = s
    for name in datasets_in(df, args.predictions):
        if name in DATASET_LOADERS and name not in surveys:
            surveys[name] = load_survey(name, args.data_dir)
    return surveys


def cmd_score(args: argparse.Namespace) -> int:
    df = read_predictions(args.predictions)
    surveys = _surveys_for(df, args)
    scored = score_predictions(df, surveys, unparsed=args.unparsed, source=args.predictions)
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
        flat = scored.assign(
            pred=[None if p is None else json.dumps([round(float(x), 6) for x in p]) for p in scored["pred"]],
            human=[json.dumps([round(float(x), 6) for x in h]) for h in scored["human"]],
        )
        flat.to_csv(out / "scores.csv", index=False)
        console.print(f"wrote {out}/leaderboard.{{json,csv}}, kss.*, baselines.*, scores.csv")
    return 0


__all__ = ["cmd_score", "register"]
