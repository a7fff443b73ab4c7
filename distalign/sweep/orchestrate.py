"""From composed cells to a finished, tracked sweep: validate, (dry-)plan, run, then the leaderboard.

Shared by the Hydra launcher (a whole grid) and a plain ``python launch.py`` (one cell), so both paths
behave identically.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from omegaconf import DictConfig

from distalign.errors import InputError
from distalign.records.config import CellConfig, spec_hash, to_cell

log = logging.getLogger(__name__)

_COLLECTING = False
_FAILED_CELLS: list[str] = []


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

    def summary_for(self, cell: CellConfig) -> dict[str, Any]:
        return self.summaries.get(spec_hash(cell), {"status": "skipped"})


def _settings(cells: Sequence[CellConfig]) -> Any:
    settings = cells[0].sweep
    transport = ("ray_address", "tracking_uri", "experiment", "store", "name")
    for c in cells[1:]:
        for key in transport:
            if getattr(c.sweep, key) != getattr(settings, key):
                raise InputError(
                    f"all cells of one sweep must share sweep.{key} "
                    f"({getattr(settings, key)!r} vs {getattr(c.sweep, key)!r})"
                )
    return settings


def _dedupe(cells: Sequence[CellConfig]) -> list[CellConfig]:
    seen: dict[str, CellConfig] = {}
    for c in cells:
        seen.setdefault(spec_hash(c), c)
    return list(seen.values())


def run(cells: Sequence[CellConfig]) -> Outcome:
    from distalign.sweep.validate import validate_cells

    cells = _dedupe(cells)
    settings = _settings(cells)
    try:
        validate_cells(cells, require_keys=not settings.dry_run)
    except InputError as exc:
        print(f"distalign: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    if settings.dry_run:
        return _dry_run(cells, settings)
    return _run(cells, settings)


def _dry_run(cells: Sequence[CellConfig], settings: Any) -> Outcome:
    from distalign.sweep.dryrun import dry_run

    print(dry_run(cells))
    return Outcome(summaries={spec_hash(c): {"status": "planned"} for c in cells})


def _run(cells: Sequence[CellConfig], settings: Any) -> Outcome:
    from distalign.sweep.runner import run_sweep
    from distalign.tracking.mlflow_tracker import MLflowTracker

    tracker = MLflowTracker(
        settings.tracking_uri,
        settings.experiment,
        settings.name,
        [spec_hash(c) for c in cells],
        sweep_params={"cells": len(cells), "seed": settings.seed, "n_resamples": settings.n_resamples},
    )
    done_before = tracker.finished_cells()
    if done_before:
        print(f"resuming sweep {tracker.sweep_id}: {len(done_before)} of {len(cells)} cells already finished")
    outcome = Outcome(tracking_uri=tracker.uri, parent_run_id=tracker.parent_run_id)
    try:
        sweep = run_sweep(cells, settings, tracker)
    except InputError as exc:  # found once connected (e.g. the cluster lacks GPUs): nothing was run
        tracker.finish(failed=True)
        print(f"distalign: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    for res in sweep.results:
        outcome.summaries[res.spec_hash] = {"status": res.status, **(res.metrics or {})}
        if res.status != "finished":
            outcome.failed.append(f"{res.spec_hash} ({res.error})")
    for c in cells:
        h = spec_hash(c)
        if h in done_before and h not in outcome.summaries:
            outcome.summaries[h] = {"status": "finished", "resumed": True}

    rows, extra = _leaderboard(tracker, cells, settings)
    outcome.leaderboard = rows
    figures = extra.pop("figures", {})
    tracker.log_leaderboard(rows, extra)
    tracker.log_figures(figures)
    tracker.log_parent_metrics(_totals(sweep))
    tracker.finish(failed=bool(outcome.failed))
    _FAILED_CELLS.extend(outcome.failed)
    _print_end(outcome, rows, extra, tracker)
    return outcome


def _totals(sweep: Any) -> Mapping[str, float]:
    totals = getattr(sweep, "totals", None) or {}
    return {k: float(v) for k, v in dict(totals).items() if isinstance(v, int | float)}


def _leaderboard(tracker: Any, cells: Sequence[CellConfig], settings: Any) -> tuple[list[dict], dict]:
    """Leaderboard over every finished cell of the sweep (including cells finished before a resume),
    with the baselines of the datasets it covers."""
    from distalign.report.leaderboard import baseline_rows, kss_table, leaderboard
    from distalign.sweep.cells import load_dataset

    items = tracker.finished_items()
    rows: list[dict] = []
    extra: dict[str, Any] = {}
    if len(items):
        board = _with_prediction_ids(_leaderboard_items(items))
        rows = leaderboard(board, n_resamples=settings.n_resamples, seed=settings.seed)
        extra["kss"] = kss_table(rows)
        if "calibrated_tv" in items and "calibration" in items:
            from distalign.calibration.report import sweep_report

            calibrated = items[items["calibration"].fillna("none") != "none"]
            tables, figures = sweep_report(calibrated, seed=settings.seed)
            extra.update(tables)
            extra["figures"] = figures
    surveys = {}
    for c in cells:
        if c.dataset.name not in surveys:
            with contextlib.suppress(InputError):
                surveys[c.dataset.name] = load_dataset(c.dataset)
    if surveys:
        rows = rows + baseline_rows(surveys, n_resamples=settings.n_resamples, seed=settings.seed)
    return rows, extra


EVAL_SPLITS = ("test", "in_sample", "applied")


def _leaderboard_items(items: Any) -> Any:
    """Raw rows once per (model, method, steering, dataset), preferring uncalibrated cells; calibrated
    cells add their own rows as method ``<method>+<calibration>`` (the paper's "temperature-scaled log-p"),
    scored on the rows their calibrator never trained on."""
    import pandas as pd

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


def _with_prediction_ids(items: Any) -> Any:
    """One id per model prediction: a no-steering answer scored against several groups counts once in the
    extraction rate."""
    import pandas as pd

    if not len(items):
        return items
    keys = ["model", "method", "steering", "dataset", "item_id", "prompt_hash"]
    ids = pd.MultiIndex.from_frame(items[keys].astype(str)).factorize()[0] + 1
    return items.assign(row=ids)


def _print_end(outcome: Outcome, rows: list[dict], extra: dict, tracker: Any) -> None:
    from distalign.report.render import print_leaderboard

    print_leaderboard(rows, extra.get("kss", ()))
    experiment = tracker.client.get_experiment(tracker.experiment_id).name
    print(f"\nMLflow: {tracker.uri}  (experiment {experiment!r}, parent run {tracker.parent_run_id})")
    print(f"Open it with:  {tracker.ui_command()}")
    if outcome.failed:
        print(f"\n{len(outcome.failed)} cell(s) failed:", *outcome.failed, sep="\n  ", file=sys.stderr)


def cell_dict(cell: CellConfig) -> dict[str, Any]:
    return asdict(cell)
