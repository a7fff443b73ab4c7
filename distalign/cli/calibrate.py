"""``distalign calibrate``: calibrate a predictions file against the human distributions.

Fits temperature scaling or regression calibration on the file's rows (or applies a calibrator logged
earlier, ``--model-uri``), writes the calibrated predictions in the predictions schema, and reports raw and
calibrated scores as leaderboard rows (the ``distalign score`` JSON shape) with a ``calibration`` field.
Scores are computed on the rows no calibrator trained on, for the raw and calibrated rows alike.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console
from rich.table import Table

from distalign.calibration.frame import is_evaluated
from distalign.calibration.stage import apply_calibrator, calibrate_items
from distalign.errors import InputError
from distalign.records.config import CalibrationConfig
from distalign.report.leaderboard import leaderboard
from distalign.scoring.predictions import datasets_in, read_predictions
from distalign.scoring.score import UNPARSED_POLICIES, score_predictions
from distalign.survey.model import DATASETS, Survey
from distalign.survey.registry import DATASET_LOADERS, load_survey
from distalign.tracking.calibrators import load_calibrator

PREDICTION_COLUMNS: tuple[str, ...] = (
    "model",
    "method",
    "steering",
    "dataset",
    "item_id",
    "attribute",
    "group",
)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("calibrate", help="temperature or regression calibration of a predictions file")
    p.add_argument(
        "predictions", type=Path, help="predictions file (JSONL, CSV or Parquet; see distalign score)"
    )
    p.add_argument("--method", choices=("temperature", "regression"), default=None, help="calibrator to fit")
    p.add_argument(
        "--fit",
        choices=("held_out", "in_sample"),
        default="held_out",
        help="temperature: cross-fit or in-sample",
    )
    p.add_argument("--data-dir", default=None, help="release root folder (default: $DISTALIGN_DATA_DIR)")
    p.add_argument(
        "--survey", type=Path, action="append", default=[], help="a custom survey file (repeatable)"
    )
    p.add_argument("--out", type=Path, default=None, help="folder for calibrated predictions and scores")
    p.add_argument(
        "--json", type=Path, default=None, help="write the raw + calibrated score rows as JSON here"
    )
    p.add_argument(
        "--model-uri", default=None, help="apply this logged calibrator (models:/...) instead of fitting"
    )
    p.add_argument("--tracking-uri", default=None, help="MLflow tracking URI for --model-uri")
    p.add_argument(
        "--unparsed", choices=UNPARSED_POLICIES, default="uniform", help="how unparsed answers score"
    )
    p.add_argument("--seed", type=int, default=0, help="split and bootstrap seed")
    p.add_argument("--n-resamples", type=int, default=1000, help="bootstrap resamples (default 1000)")
    p.set_defaults(func=cmd_calibrate)


def _surveys(df: pd.DataFrame, args: argparse.Namespace) -> dict[str, Survey]:
    surveys: dict[str, Survey] = {}
    for path in args.survey:
        s = load_survey("custom", path=path)
        surveys[s.name] = s
    for name in datasets_in(df, args.predictions):
        if name in DATASET_LOADERS and name not in surveys:
            surveys[name] = load_survey(name, args.data_dir)
    return surveys


def items_from_scored(scored: pd.DataFrame, surveys: dict[str, Survey]) -> pd.DataFrame:
    """``score_predictions`` output as an items table: probs columns renamed, ordinal positions added."""
    items = scored.rename(columns={"pred": "pred_probs", "human": "human_probs"})
    items["ordinal"] = [
        list(surveys[d].items[i].ordinal) for d, i in zip(items["dataset"], items["item_id"], strict=True)
    ]
    return items


def _rows(
    items: pd.DataFrame, label: str, order: list[str], args: argparse.Namespace
) -> list[dict[str, Any]]:
    rows = leaderboard(items, order, n_resamples=args.n_resamples, seed=args.seed)
    return [{**r, "calibration": label} for r in rows]


def _clean(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: None if isinstance(v, float) and math.isnan(v) else v for k, v in r.items()} for r in rows]


def _write_json(path: Path, payload: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")


def cmd_calibrate(args: argparse.Namespace) -> int:
    if (args.method is None) == (args.model_uri is None):
        raise InputError(
            "give exactly one of --method (fit a calibrator) or --model-uri (apply one)", where="--method"
        )
    df = read_predictions(args.predictions)
    surveys = _surveys(df, args)
    scored = score_predictions(df, surveys, unparsed=args.unparsed, source=args.predictions)
    items = items_from_scored(scored, surveys)
    if args.model_uri:
        try:
            model = load_calibrator(args.model_uri, args.tracking_uri)
        except Exception as exc:  # MLflow raises many types for a bad URI or store
            raise InputError(
                f"cannot load calibrator: {str(exc).splitlines()[0]}", where="--model-uri"
            ) from None
        outcome = apply_calibrator(items, model)
        label = outcome.params["calibration"]
    else:
        outcome = calibrate_items(items, CalibrationConfig(name=args.method, fit=args.fit), seed=args.seed)
        label = args.method
    ev = outcome.items[is_evaluated(outcome.items["split"]) & outcome.items["pred_probs"].notna()]
    order = [d for d in DATASETS if d in surveys] + [d for d in surveys if d not in DATASETS]
    raw = _rows(ev, "none", order, args)
    cal = _rows(ev.assign(tv=ev["calibrated_tv"], alignment=ev["calibrated_alignment"]), label, order, args)
    rows = _clean(raw + cal)
    _print(rows, outcome.metrics)
    if args.json is not None:
        _write_json(args.json, rows)
    if args.out is not None:
        _write_outputs(args.out, ev, rows, outcome.metrics | {"calibration": label, **outcome.params})
    return 0


def _write_outputs(out: Path, ev: pd.DataFrame, rows: list[dict[str, Any]], summary: dict[str, Any]) -> None:
    """Calibrated predictions (schema of ``distalign score``, evaluation rows only), scores and metrics."""
    out.mkdir(parents=True, exist_ok=True)
    preds = ev[list(PREDICTION_COLUMNS)].assign(
        probs=[[round(float(x), 8) for x in p] for p in ev["calibrated_probs"]],
        calibration=summary["calibration"],
        split=ev["split"].to_numpy(),
    )
    preds.to_json(out / "predictions_calibrated.jsonl", orient="records", lines=True, force_ascii=False)
    _write_json(out / "scores.json", rows)
    pd.DataFrame(rows).to_csv(out / "scores.csv", index=False)
    _write_json(out / "metrics.json", _clean([summary])[0])
    Console().print(f"wrote {out}/predictions_calibrated.jsonl, scores.{{json,csv}}, metrics.json")


def _print(rows: list[dict[str, Any]], metrics: dict[str, Any]) -> None:
    table = Table(title="Raw vs calibrated (rows the calibrator never trained on)")
    for c in ("calibration", "model", "method", "steering", "dataset", "TV", "n"):
        table.add_column(c)
    for r in rows:
        tv = "-" if r["mean"] is None else f"{r['mean']:.3f} ± {(r['ci_high'] - r['ci_low']) / 2:.3f}"
        table.add_row(
            *(str(r.get(c)) for c in ("calibration", "model", "method", "steering", "dataset")),
            tv,
            str(r["n"]),
        )
    console = Console()
    console.print(table)
    shown = {k: v for k, v in metrics.items() if k in ("ece_before", "ece_after", "temperature", "dev_score")}
    if shown:
        console.print(", ".join(f"{k} {v:.4f}" for k, v in shown.items()))
