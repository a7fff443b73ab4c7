"""From composed cells to a finished, tracked sweep: validate, (dry-)plan, run, then the leaderboard.

Shared by the Hydra launcher (a whole grid) and a plain ``python launch.py`` (one cell), so both paths
behave identically. The leaderboard is computed from the sweep folder (the cells' Parquet files, finished
now or before a resume); MLflow only receives it.
"""

from __future__ import annotations

import contextlib
import logging
import math
import signal
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from omegaconf import DictConfig

from distalign.calibration.report import sweep_report
from distalign.errors import InputError
from distalign.records.config import CellConfig, SweepSettings, to_cell
from distalign.records.results import SweepOutcome
from distalign.report.leaderboard import aggregate_name, baseline_rows, kss_table, leaderboard
from distalign.report.render import print_leaderboard
from distalign.scoring import results as cell_files
from distalign.survey.model import Survey
from distalign.sweep.cells import cell_hash
from distalign.sweep.dryrun import describe
from distalign.sweep.plan import summarize
from distalign.sweep.runner import run_sweep, sweep_folder, sweep_id
from distalign.sweep.validate import Validated, validate_cells
from distalign.tracking.mlflow_tracker import MLflowTracker

log = logging.getLogger(__name__)

_COLLECTING = False
_FAILED_CELLS: list[str] = []
#: the columns of the cells' items tables the leaderboard reads (a large sweep's tables are big)
BOARD_COLUMNS = (
    "model",
    "method",
    "steering",
    "dataset",
    "item_id",
    "attribute",
    "group",
    "prompt_hash",
    "status",
    "tv",
)
CALIBRATED_COLUMNS = ("calibration", "split", "calibrated_tv")


@contextlib.contextmanager
def collecting() -> Iterator[None]:
    """While active, the task function only composes and returns its cell (the launcher runs them all)."""
    global _COLLECTING
    _COLLECTING = True
    try:
        yield
    finally:
        _COLLECTING = False


def task(cfg: DictConfig) -> Any:
    cell = to_cell(cfg)
    if _COLLECTING:
        return cell
    return run([cell]).summary_for(cell)


def exit_code() -> int:
    """Non-zero after a sweep in which some cell failed (all other cells still ran and were logged)."""
    return 1 if _FAILED_CELLS else 0


@dataclass
class Outcome:
    summaries: dict[str, dict[str, Any]] = field(default_factory=dict)
    leaderboard: list[dict[str, Any]] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    tracking_uri: str | None = None
    parent_run_id: str | None = None
    folder: str | None = None

    def summary_for(self, cell: CellConfig) -> dict[str, Any]:
        try:
            key = cell_hash(cell)
        except InputError:
            return {"status": "skipped"}
        return self.summaries.get(key, {"status": "skipped"})


def _settings(cells: Sequence[CellConfig]) -> SweepSettings:
    settings = cells[0].sweep
    for c in cells[1:]:
        if c.sweep != settings:
            key = next(k for k in vars(settings) if getattr(c.sweep, k) != getattr(settings, k))
            raise InputError(
                f"all cells of one sweep must share sweep.{key} "
                f"({getattr(settings, key)!r} vs {getattr(c.sweep, key)!r})"
            )
    return settings


def _fail(message: str, code: int = 2) -> SystemExit:
    print(f"distalign: {message}", file=sys.stderr)
    return SystemExit(code)


def run(cells: Sequence[CellConfig]) -> Outcome:
    try:
        settings = _settings(cells)
        validated = validate_cells(cells, require_keys=not settings.dry_run, unsupported=settings.unsupported)
    except InputError as exc:
        raise _fail(f"configuration error: {exc}") from None
    for line in validated.unsupported_lines():
        print(line)
    if settings.dry_run:
        return _dry_run(validated)
    return _run(validated, settings)


def _dry_run(validated: Validated) -> Outcome:
    summary = summarize(validated.cells)
    print(describe(summary))
    if summary.failed:
        raise _fail(f"{len(summary.failed)} cell(s) could not be planned (see above)", 1)
    return Outcome(summaries={c.spec_hash: {"status": "planned"} for c in validated.cells})


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (a scheduler or ``kill``) stops the sweep the way Ctrl-C does."""

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run(validated: Validated, settings: SweepSettings) -> Outcome:
    cells = validated.cells
    hashes = [c.spec_hash for c in cells]
    folder = sweep_folder(settings, hashes)
    configs = [c.config for c in cells]
    tracker = MLflowTracker(
        settings.tracking_uri,
        settings.experiment,
        settings.name,
        sweep_id(settings, hashes),
        sweep_params={"cells": len(cells), "seed": settings.seed, "n_resamples": settings.n_resamples},
    )
    done_before = cell_files.finished_cells(folder) & set(hashes)
    if done_before:
        print(f"resuming sweep {folder}: {len(done_before)} of {len(cells)} cells already finished")
    outcome = Outcome(tracking_uri=tracker.uri, parent_run_id=tracker.parent_run_id, folder=str(folder))
    try:
        with _sigterm_as_interrupt():
            sweep = run_sweep(configs, settings, tracker, folder, keep_items=False)
    except KeyboardInterrupt:
        with contextlib.suppress(Exception):
            tracker.finish("KILLED")
        raise _fail(
            "interrupted; finished cells are kept: run the same command again to resume", 130
        ) from None
    except InputError as exc:  # found once connected (e.g. the cluster lacks GPUs): nothing was run
        tracker.finish("FAILED")
        raise _fail(f"configuration error: {exc}") from None
    for res in sweep.results:
        outcome.summaries[res.spec_hash] = {"status": res.status, **(res.metrics or {})}
        if res.status != "finished":
            outcome.failed.append(f"{res.spec_hash} ({res.error})")
    for h in done_before:
        outcome.summaries.setdefault(h, {"status": "finished", "resumed": True})

    rows, extra, figures = _leaderboard(folder, validated, settings)
    outcome.leaderboard = rows
    tracker.log_leaderboard(rows, extra)
    report = _write_report(folder, rows, extra, figures)
    tracker.log_folder(report, "report")
    tracker.set_description(leaderboard_markdown(rows))
    tracker.log_parent_metrics(_totals(sweep))
    tracker.finish("FAILED" if outcome.failed else "FINISHED")
    _FAILED_CELLS.extend(outcome.failed)
    _print_end(outcome, rows, extra, tracker, report)
    return outcome


def _totals(sweep: SweepOutcome) -> Mapping[str, float]:
    return {k: float(v) for k, v in sweep.totals.items() if isinstance(v, int | float)}


def _unsupported_rows(validated: Validated, datasets: Sequence[str]) -> list[dict[str, Any]]:
    """The paper's empty cells ("—"): a model x method the model cannot serve, on the aggregate row."""
    seen = dict.fromkeys((c.model.name, c.method.name) for c, _ in validated.unsupported)
    nan = float("nan")
    return [
        {
            "kind": "model",
            "model": model,
            "method": method,
            "steering": "all",
            "dataset": aggregate_name(datasets),
            "mean": nan,
            "ci_low": nan,
            "ci_high": nan,
            "n": 0,
            "extraction_rate": nan,
            "note": "not served by this model",
        }
        for model, method in seen
    ]


def _leaderboard(
    folder: Path, validated: Validated, settings: SweepSettings
) -> tuple[list[dict[str, Any]], dict[str, Any], dict[str, Any]]:
    """Leaderboard over every finished cell of the sweep (including cells finished before a resume),
    with the baselines of the datasets it covers and the unsupported cells as empty rows."""
    hashes = {c.spec_hash for c in validated.cells}
    records = [r for r in cell_files.read_records(folder) if r["spec_hash"] in hashes]
    calibrated = any(r["cell"]["calibration"]["name"] != "none" for r in records)
    items = cell_files.read_items(folder, None if calibrated else BOARD_COLUMNS)
    if len(items):
        items = items[items["model"].notna()]
    rows: list[dict[str, Any]] = []
    extra: dict[str, Any] = {}
    figures: dict[str, Any] = {}
    surveys: dict[str, Survey] = {}
    for c in validated.cells:
        surveys.setdefault(c.survey.name, c.survey)
    if len(items):
        board = _with_prediction_ids(_leaderboard_items(items))
        rows = leaderboard(board, n_resamples=settings.n_resamples, seed=settings.seed)
        extra["kss"] = kss_table(rows)
        if calibrated and "calibrated_tv" in items:
            cal = items[items["calibration"].fillna("none") != "none"]
            tables, figures = sweep_report(cal, seed=settings.seed)
            extra.update(tables)
    rows += _unsupported_rows(validated, list(surveys))
    if surveys:
        rows += baseline_rows(surveys, n_resamples=settings.n_resamples, seed=settings.seed)
    return rows, extra, figures


EVAL_SPLITS = ("test", "in_sample", "applied")


def _leaderboard_items(items: pd.DataFrame) -> pd.DataFrame:
    """Raw rows once per (model, method, steering, dataset), preferring uncalibrated cells; calibrated
    cells add their own rows as method ``<method>+<calibration>`` (the paper's "temperature-scaled log-p"),
    scored on the rows their calibrator never trained on."""
    if "calibration" not in items:
        return items
    cal = items["calibration"].fillna("none")
    raw = items[cal == "none"]
    key = ["model", "method", "steering", "dataset"]
    have = set(map(tuple, raw[key].astype(str).to_numpy())) if len(raw) else set()
    parts = [raw]
    for name in sorted(set(cal) - {"none"}):
        sub = items[cal == name]
        missing = ~sub[key].astype(str).apply(tuple, axis=1).isin(have)
        first = sub[missing]
        if len(first):  # raw rows of a calibrated-only cell, from one calibration only
            parts.append(first)
            have |= set(map(tuple, first[key].astype(str).to_numpy()))
        ev = sub[
            sub["split"].astype(str).isin(EVAL_SPLITS) | sub["split"].astype(str).str.startswith("heldout")
        ]
        parts.append(ev.assign(tv=ev["calibrated_tv"], method=ev["method"] + "+" + name))
    return pd.concat(parts, ignore_index=True)


def _with_prediction_ids(items: pd.DataFrame) -> pd.DataFrame:
    """One id per model prediction: a no-steering answer scored against several groups counts once in the
    extraction rate."""
    if not len(items):
        return items
    keys = ["model", "method", "steering", "dataset", "item_id", "prompt_hash"]
    ids = pd.MultiIndex.from_frame(items[keys].astype(str)).factorize()[0] + 1
    return items.assign(row=ids)


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def leaderboard_markdown(rows: Sequence[Mapping[str, Any]]) -> str:
    """The aggregate leaderboard as a Markdown table (the MLflow run page shows it as the run's note)."""
    lines = [
        "| model | method | steering | dataset | mean TV | 95% CI | n |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r.get("dataset") not in ("three", "all"):
            continue
        ci = "—" if _cell(r.get("mean")) == "—" else f"{_cell(r.get('ci_low'))}–{_cell(r.get('ci_high'))}"
        names = [str(r.get(k) or "—") for k in ("model", "method", "steering", "dataset")]
        lines.append(f"| {' | '.join(names)} | {_cell(r.get('mean'))} | {ci} | {r.get('n', '')} |")
    return "\n".join(lines) + "\n"


def _write_report(
    folder: Path, rows: list[dict[str, Any]], extra: dict[str, Any], figures: dict[str, Any]
) -> Path:
    """The sweep's tables (CSV, Markdown) and figures in ``<sweep folder>/report``."""
    out = folder / "report"
    (out / "figures").mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(out / "leaderboard.csv", index=False)
    for name, table in extra.items():
        t = pd.DataFrame(table)
        if len(t):
            t.to_csv(out / f"{name}.csv", index=False)
    (out / "leaderboard.md").write_text(leaderboard_markdown(rows), encoding="utf-8")
    for name, fig in figures.items():
        path = out / "figures" / f"{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=110)
    return out


def _print_end(
    outcome: Outcome, rows: list[dict[str, Any]], extra: dict[str, Any], tracker: MLflowTracker, report: Path
) -> None:
    print_leaderboard(rows, extra.get("kss", ()))
    experiment = tracker.client.get_experiment(tracker.experiment_id).name
    print(f"\nReport: {report}")
    print(f"MLflow: {tracker.uri}  (experiment {experiment!r}, parent run {tracker.parent_run_id})")
    print(f"Open it with:  {tracker.ui_command()}")
    if outcome.failed:
        print(f"\n{len(outcome.failed)} cell(s) failed:", *outcome.failed, sep="\n  ", file=sys.stderr)
