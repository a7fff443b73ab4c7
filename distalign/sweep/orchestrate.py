"""From composed cells to a finished, tracked sweep: validate, (dry-)plan, run, then the leaderboard.

Shared by the Hydra launcher (a whole grid) and a plain ``python launch.py`` (one cell), so both paths
behave identically. The leaderboard is computed from the sweep folder (the cells' Parquet files, finished
now or before a resume); MLflow only receives it.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from distalign.engines.batch.base import BatchError
from distalign.errors import InputError
from distalign.records.config import CellConfig, SweepSettings, to_cell
from distalign.records.results import SweepOutcome
from distalign.report.document import ReportFiles, write_report
from distalign.report.leaderboard import aggregate_name, kss_table
from distalign.report.render import print_leaderboard
from distalign.report.tables import leaderboard_markdown
from distalign.scoring import results as cell_files
from distalign.scoring.results import read_items
from distalign.survey.model import Survey
from distalign.survey.paths import FIXTURE_NOTE, is_fixture
from distalign.sweep.cells import cell_hash
from distalign.sweep.dryrun import describe
from distalign.sweep.plan import summarize
from distalign.sweep.pool import check_ray_address
from distalign.sweep.runner import run_sweep, sweep_folder, sweep_id
from distalign.sweep.validate import Validated, validate_cells
from distalign.tracking.mlflow_tracker import MLflowTracker

log = logging.getLogger(__name__)

_COLLECTING = False
_FAILED_CELLS: list[str] = []
#: columns of the cells' items tables a report does not read (the raw responses are the bulk of them)
SKIPPED_COLUMNS = ("responses",)


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
    try:
        cell = to_cell(cfg)
    except InputError as exc:
        raise _fail(f"configuration error: {exc}") from None
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
    try:
        check_ray_address(settings)  # before any run is created: an unreachable cluster fails in seconds
        tracker = MLflowTracker(
            settings.tracking_uri,
            settings.experiment,
            settings.name,
            sweep_id(settings, hashes),
            sweep_params={"cells": len(cells), "seed": settings.seed, "n_resamples": settings.n_resamples},
        )
    except InputError as exc:
        raise _fail(str(exc)) from None
    try:
        with _sigterm_as_interrupt():
            return _sweep(validated, settings, tracker, folder)
    except KeyboardInterrupt:
        # stopped at once: no new work is sent, Ray (when this sweep started it) is shut down by run_sweep
        # and the cells finished so far stay FINISHED; the parent run says the sweep was stopped
        with contextlib.suppress(Exception):
            tracker.finish("KILLED")
        raise _fail(
            "interrupted; finished cells are kept: run the same command again to resume", 130
        ) from None


def _sweep(validated: Validated, settings: SweepSettings, tracker: MLflowTracker, folder: Path) -> Outcome:
    cells = validated.cells
    hashes = [c.spec_hash for c in cells]
    done_before = cell_files.finished_cells(folder) & set(hashes)
    if done_before:
        print(f"resuming sweep {folder}: {len(done_before)} of {len(cells)} cells already finished")
    outcome = Outcome(tracking_uri=tracker.uri, parent_run_id=tracker.parent_run_id, folder=str(folder))
    try:
        sweep = run_sweep([c.config for c in cells], settings, tracker, folder, keep_items=False)
    except InputError as exc:  # found once connected (e.g. the cluster lacks GPUs): nothing was run
        tracker.finish("FAILED")
        raise _fail(f"configuration error: {exc}") from None
    except BatchError as exc:  # a provider refused a batch: its reason, nothing else was sent
        tracker.finish("FAILED")
        raise _fail(str(exc), 1) from None
    batch_tags = {
        f"batch_ids.{m}": ",".join(s["batch_ids"]) for m, s in sweep.engine_stats.items() if "batch_ids" in s
    }
    if batch_tags:
        tracker.log_parent_tags(batch_tags)
    pending = int(sweep.totals.get("batches_pending", 0))
    if pending:
        # sweep.batch_wait=false: the batches are recorded in the sweep folder; the same command collects them
        tracker.log_parent_metrics(_totals(sweep))
        tracker.finish("FINISHED")
        print(f"{pending} batches pending; rerun to collect")
        outcome.summaries.update({r.spec_hash: {"status": r.status} for r in sweep.results})
        return outcome
    for res in sweep.results:
        outcome.summaries[res.spec_hash] = {"status": res.status, **(res.metrics or {})}
        if res.status != "finished":
            outcome.failed.append(f"{res.spec_hash} ({res.error})")
    for h in done_before:
        outcome.summaries.setdefault(h, {"status": "finished", "resumed": True})

    report = _report(folder, validated, settings)
    rows = [dict(r) for r in report.rows]
    outcome.leaderboard = rows
    tracker.log_leaderboard(rows)
    tracker.log_folder(report.out, "report")
    tracker.set_description(leaderboard_markdown(rows))
    tracker.log_parent_metrics(_totals(sweep))
    tracker.finish("FAILED" if outcome.failed else "FINISHED")
    _FAILED_CELLS.extend(outcome.failed)
    invented = any(is_fixture(c.config.dataset.data_dir) for c in validated.cells)
    _print_end(outcome, rows, tracker, report.html, invented)
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
        }
        for model, method in seen
    ]


def _report(folder: Path, validated: Validated, settings: SweepSettings) -> ReportFiles:
    """The sweep's report (leaderboard, figures, calibration analyses) from every finished cell of the
    sweep folder, including cells finished before a resume."""
    items = read_items(folder, exclude=SKIPPED_COLUMNS)
    surveys: dict[str, Survey] = {}
    for c in validated.cells:
        surveys.setdefault(c.survey.name, c.survey)
    invented = any(is_fixture(c.config.dataset.data_dir) for c in validated.cells)
    return write_report(
        items,
        folder / "report",
        title=f"Sweep {settings.name}" + (" (invented sample data)" if invented else ""),
        surveys=surveys,
        n_resamples=settings.n_resamples,
        seed=settings.seed,
        empty_rows=_unsupported_rows(validated, list(surveys)),
        calibration=next(
            (c.config.calibration for c in validated.cells if c.config.calibration.name == "regression"), None
        ),
    )


def _print_end(
    outcome: Outcome, rows: list[dict[str, Any]], tracker: MLflowTracker, report: Path, invented: bool
) -> None:
    print_leaderboard(rows, kss_table(rows))
    if invented:
        print(f"\nData: {FIXTURE_NOTE}.")
    experiment = tracker.client.get_experiment(tracker.experiment_id).name
    print(f"\nReport: {report}")
    print(f"MLflow: {tracker.uri}  (experiment {experiment!r}, parent run {tracker.parent_run_id})")
    print(f"Open it with:  {tracker.ui_command()}")
    if outcome.failed:
        print(f"\n{len(outcome.failed)} cell(s) failed:", *outcome.failed, sep="\n  ", file=sys.stderr)
