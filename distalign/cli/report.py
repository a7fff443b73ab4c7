"""``distalign report SOURCE --out DIR``: the papers' tables and figures for a sweep folder, an MLflow
parent run or a predictions file, as ``report.html``, ``report.md`` and ``tables/*.csv``."""

from __future__ import annotations

import argparse
import re
import tempfile
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from distalign.cli.helptext import add_command
from distalign.cli.outputs import check_output
from distalign.cli.score import DATA_DIR_HELP, bootstrap_args
from distalign.errors import InputError
from distalign.records.config import UNPARSED_POLICIES
from distalign.report.document import ReportFiles, write_report
from distalign.report.items import as_items
from distalign.report.leaderboard import MIN_PARSED
from distalign.report.meister2024.compare import release_beside
from distalign.scoring.predictions import datasets_in, read_predictions
from distalign.scoring.results import CELLS, read_items
from distalign.scoring.score import score_predictions
from distalign.survey.registry import surveys_for
from distalign.tracking.mlflow_tracker import resolve_tracking_uri
from distalign.tracking.readback import download_sweep

SourceKind = Literal["sweep", "mlflow", "predictions"]
#: an MLflow run id: 32 hexadecimal digits
RUN_ID = re.compile(r"[0-9a-f]{32}")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_command(
        subparsers,
        "report",
        "tables and figures (HTML, Markdown, CSV) of a sweep folder, MLflow run or predictions file",
        (
            "distalign report .distalign/sweeps/distalign-1a2b3c4d5e6f --out report/",
            "distalign report PARENT_RUN_ID --tracking-uri sqlite:///mlflow.db --out report/",
            "distalign report predictions.jsonl --data-dir ~/meister2024 --out report/",
        ),
    )
    p.add_argument(
        "source",
        help="a sweep output folder (with cells/), an MLflow parent run id, or a predictions file "
        "(JSONL, CSV or Parquet; see distalign/scoring/PREDICTIONS_FORMAT.md)",
    )
    p.add_argument(
        "--out", type=Path, required=True, help="folder for report.html, report.md, tables/, figures/"
    )
    p.add_argument("--title", default=None, help="the report's title (default: from SOURCE)")
    p.add_argument(
        "--tracking-uri",
        default=None,
        help="MLflow tracking URI for a run id (default: $MLFLOW_TRACKING_URI, else ./mlflow.db)",
    )
    p.add_argument(
        "--with",
        dest="with_",
        choices=("meister2024",),
        default=None,
        help="add a paper's own rows, scored identically on the same items: meister2024 = the benchmark "
        "release's models (their outputs read from --data-dir) on the items, groups and steering modes "
        "SOURCE ran, beside their published full-data values; refused for data that is not the "
        "release's (default: none)",
    )
    p.add_argument(
        "--min-parsed",
        type=float,
        default=MIN_PARSED,
        help="a cell that parsed fewer than this share of its answers is marked as mostly filler and left "
        f"out of the knowledge-to-simulation gap (default: {MIN_PARSED})",
    )
    p.add_argument("--data-dir", default=None, help=DATA_DIR_HELP)
    p.add_argument(
        "--survey",
        type=Path,
        action="append",
        default=[],
        help="a custom survey file (repeatable; default: none)",
    )
    p.add_argument(
        "--unparsed",
        choices=UNPARSED_POLICIES,
        default="uniform",
        help="how unparsed answers of a predictions file score",
    )
    bootstrap_args(p)
    p.set_defaults(func=cmd_report)


def source_kind(source: str) -> SourceKind:
    """What SOURCE names; anything else is an error naming it."""
    path = Path(source)
    if path.is_dir():
        if (path / CELLS).is_dir():
            return "sweep"
        raise InputError(f"a folder without {CELLS}/ is not a sweep output folder", where=f"SOURCE {source}")
    if path.is_file():
        return "predictions"
    if RUN_ID.fullmatch(source):
        return "mlflow"
    raise InputError(
        "neither a sweep output folder, a predictions file nor an MLflow run id (32 hex digits)",
        where=f"SOURCE {source}",
    )


def _write(args: argparse.Namespace, items: pd.DataFrame, out: Path, **kwargs: Any) -> ReportFiles:
    """The report of ``items``; with ``--with meister2024``, beside the paper's models on the same items."""
    if args.with_ == "meister2024":
        beside = release_beside(as_items(items), args.data_dir)
        kwargs |= {
            "extra_rows": [beside.rows],
            "coverage": beside.coverage,
            "published": beside.published,
        }
    return write_report(items, out, **kwargs)


def cmd_report(args: argparse.Namespace) -> int:
    out: Path = args.out
    check_output(out, "--out", folder=True)
    if not 0 <= args.min_parsed <= 1:
        raise InputError(f"expected a share between 0 and 1, got {args.min_parsed}", where="--min-parsed")
    kind = source_kind(args.source)
    title = args.title or f"distalign report: {args.source}"
    common = {
        "title": title,
        "n_resamples": args.n_resamples,
        "seed": args.seed,
        "min_parsed": args.min_parsed,
    }
    if kind == "predictions":
        path = Path(args.source)
        df = read_predictions(path)
        surveys = surveys_for(datasets_in(df, path), args.data_dir, args.survey)
        scored = score_predictions(df, surveys, unparsed=args.unparsed, source=path)
        files = _write(args, scored, out, surveys=surveys, **common)
    elif kind == "sweep":
        items = read_items(args.source)
        if items.empty:
            raise InputError("no finished cells", where=f"SOURCE {args.source}")
        files = _write(args, items, out, **common)
    else:
        with tempfile.TemporaryDirectory(prefix="distalign-report-") as tmp:
            folder = download_sweep(args.source, resolve_tracking_uri(args.tracking_uri), tmp)
            items = read_items(folder)
            if items.empty:
                raise InputError("no finished cells", where=f"MLflow run {args.source}")
            files = _write(args, items, out, **common)
    print(f"wrote {files.html}\n      {files.markdown}")
    print(
        f"      {len(files.tables)} table(s) in {out / 'tables'}, {len(files.figures)} figure(s) in figures/"
    )
    return 0


__all__ = ["cmd_report", "register", "source_kind"]
