"""The real run of a validated sweep: lock its folder, open the MLflow parent run, run every cell, write the
report and print the leaderboard. Only a real run imports this module (MLflow, Ray, the report's
scikit-learn and matplotlib), so a dry run or a configuration error answers without loading them.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import traceback
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from distalign.engines.batch.base import BatchError
from distalign.engines.store import ResponseStore, StoreError
from distalign.errors import InputError
from distalign.records.config import SweepSettings
from distalign.report.document import ReportFiles, write_report
from distalign.report.leaderboard import aggregate_name, headline_steering, kss_table
from distalign.report.render import print_leaderboard
from distalign.report.tables import leaderboard_markdown
from distalign.scoring import results as cell_files
from distalign.scoring.results import read_items
from distalign.survey.model import Survey
from distalign.survey.paths import FIXTURE_NOTE, is_fixture
from distalign.sweep.cluster import check_ray_address
from distalign.sweep.damaged import set_aside_damaged
from distalign.sweep.failures import FailureKind, failure_lines, summarise
from distalign.sweep.lock import SweepBusy, SweepLock, tracking_store_lock
from distalign.sweep.outcome import Outcome, fail
from distalign.sweep.record import sweep_metrics
from distalign.sweep.runner import run_sweep, store_root, sweep_folder, sweep_id
from distalign.sweep.validate import Validated
from distalign.tracking.mlflow_tracker import MLflowTracker, resolve_tracking_uri
from distalign.tracking.store_check import check_tracking_uri

log = logging.getLogger(__name__)

#: columns of the cells' items tables a report does not read (the raw responses are the bulk of them)
SKIPPED_COLUMNS = ("responses",)
#: exit status when another driver holds the sweep folder (EX_TEMPFAIL: try again later)
BUSY_EXIT = 75


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


def run_validated(validated: Validated, settings: SweepSettings) -> Outcome:
    """Runs the validated cells as one tracked sweep; every way out closes what it opened."""
    cells = validated.cells
    hashes = [c.spec_hash for c in cells]
    folder = sweep_folder(settings, hashes)
    lock = SweepLock(folder)
    try:
        # an unreachable cluster or tracking server fails in seconds, before anything is written
        check_ray_address(settings)
        check_tracking_uri(resolve_tracking_uri(settings.tracking_uri))
        lock.acquire()  # one driver per sweep folder; the kernel releases it if this process dies
        with ResponseStore(store_root(settings)) as store:
            store.check_writable()  # before any request is paid for
        with tracking_store_lock(resolve_tracking_uri(settings.tracking_uri)):
            tracker = MLflowTracker(
                settings.tracking_uri,
                settings.experiment,
                settings.name,
                sweep_id(settings, hashes),
                sweep_params={
                    "cells": len(cells),
                    "seed": settings.seed,
                    "n_resamples": settings.n_resamples,
                },
            )
    except SweepBusy as exc:
        raise fail(str(exc), BUSY_EXIT) from None
    except InputError as exc:
        lock.release()
        raise fail(str(exc)) from None
    # every way out closes the parent run: FINISHED, FAILED (any error) or KILLED (Ctrl-C, SIGTERM)
    try:
        with _sigterm_as_interrupt():
            return _sweep(validated, settings, tracker, folder)
    except StoreError as exc:  # answers could not be kept: stopped before sending more
        _close(tracker, "FAILED")
        raise fail(str(exc), 1) from None
    except KeyboardInterrupt:
        # stopped at once: no new work is sent, Ray (when this sweep started it) is shut down by run_sweep
        # and the cells finished so far stay FINISHED; the parent run says the sweep was stopped
        _close(tracker, "KILLED")
        raise fail(
            "interrupted; finished cells are kept: run the same command again to resume", 130
        ) from None
    except SystemExit:
        _close(tracker, "FAILED")
        raise
    except InputError as exc:  # found once running (the cluster lacks GPUs, an unusable store, ...)
        _close(tracker, "FAILED")
        raise fail(f"{exc}; finished cells are kept: fix it and run the same command again") from None
    except Exception as exc:
        _close(tracker, "FAILED")
        where = _save_traceback(folder)
        first = next((ln for ln in str(exc).splitlines() if ln.strip()), "")
        raise fail(
            f"the sweep stopped: {type(exc).__name__}: {first[:300]} (details in {where}); finished cells "
            "are kept: run the same command again to resume",
            1,
        ) from None
    finally:
        lock.release()


def _close(tracker: MLflowTracker, status: str) -> None:
    """Closes the parent run; a tracking store that fails now must not hide the error being reported."""
    try:
        tracker.finish(status)
    except Exception:  # noqa: BLE001
        log.warning(
            "could not mark the MLflow parent run %s %s", tracker.parent_run_id, status, exc_info=True
        )


def _save_traceback(folder: Path) -> Path:
    path = folder / "error.log"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        path.write_text(traceback.format_exc(), encoding="utf-8")
    except OSError:
        return Path("(not saved: the sweep folder is not writable)")
    return path


def _sweep(validated: Validated, settings: SweepSettings, tracker: MLflowTracker, folder: Path) -> Outcome:
    cells = validated.cells
    hashes = [c.spec_hash for c in cells]
    for line in set_aside_damaged(folder):
        print(f"distalign: {line}", file=sys.stderr)
    done_before = cell_files.finished_cells(folder) & set(hashes)
    n_cells = len(set(hashes))
    if len(done_before) == n_cells:
        print(f"all {n_cells} cells already finished: nothing to run; the report is rebuilt from {folder}")
    elif done_before:
        print(f"resuming sweep {folder}: {len(done_before)} of {n_cells} cells already finished")
    if len(done_before) < n_cells:
        tracker.reopen()  # real work starts: a FINISHED parent is reopened only now
    outcome = Outcome(tracking_uri=tracker.uri, parent_run_id=tracker.parent_run_id, folder=str(folder))
    try:
        sweep = run_sweep([c.config for c in cells], settings, tracker, folder, keep_items=False)
    except BatchError as exc:  # a provider refused a batch: its reason, nothing else was sent
        _close(tracker, "FAILED")
        raise fail(str(exc), 1) from None
    batch_tags = {
        f"batch_ids.{m}": ",".join(s["batch_ids"]) for m, s in sweep.engine_stats.items() if "batch_ids" in s
    }
    if batch_tags:
        tracker.log_parent_tags(batch_tags)
    pending = int(sweep.totals.get("batches_pending", 0))
    if pending:
        # sweep.batch_wait=false: the batches are recorded in the sweep folder; the same command collects them
        finished_now = cell_files.finished_cells(folder) & set(hashes)
        step, metrics = sweep_metrics(tracker.previous_metrics, sweep.totals, len(finished_now), 0)
        tracker.log_parent_metrics(metrics, step=step)
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

    finished = cell_files.finished_cells(folder) & set(hashes)
    invented = any(is_fixture(c.config.dataset.data_dir) for c in validated.cells)
    rows: list[dict[str, Any]] = []
    report_html: Path | None = None
    if finished:  # a sweep whose every cell failed has nothing to report: its failures say why
        report = _report(folder, validated, settings)
        rows = [dict(r) for r in report.rows]
        report_html = report.html
        tracker.log_leaderboard(rows)
        tracker.log_folder(report.out, "report")
        note = f"\n\n_Data: {FIXTURE_NOTE}._\n" if invented else ""
        tracker.set_description(leaderboard_markdown(rows, settings.min_parsed) + note)
    else:
        lines = failure_lines(summarise(sweep.results), n_cells)
        tracker.set_description("_No cell finished._\n\n" + "\n".join(f"- {ln}" for ln in lines) + "\n")
    outcome.leaderboard = rows
    step, metrics = sweep_metrics(tracker.previous_metrics, sweep.totals, len(finished), len(outcome.failed))
    tracker.log_parent_metrics(metrics, step=step)
    tracker.finish("FAILED" if outcome.failed else "FINISHED")
    _print_end(
        outcome, rows, tracker, report_html, invented, summarise(sweep.results), n_cells, settings.min_parsed
    )
    return outcome


def _unsupported_rows(validated: Validated, datasets: Sequence[str]) -> list[dict[str, Any]]:
    """The paper's empty cells ("—"): a model x method the model cannot serve, on the aggregate row."""
    seen = dict.fromkeys((c.model.name, c.method.name) for c, _ in validated.unsupported)
    modes = [c.config.steering.name for c in validated.cells] + [
        c.steering.name for c, _ in validated.unsupported
    ]
    nan = float("nan")
    return [
        {
            "kind": "model",
            "model": model,
            "method": method,
            "steering": headline_steering(modes),
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
        min_parsed=settings.min_parsed,
        calibration=next(
            (c.config.calibration for c in validated.cells if c.config.calibration.name == "regression"), None
        ),
    )


def _print_end(
    outcome: Outcome,
    rows: list[dict[str, Any]],
    tracker: MLflowTracker,
    report: Path | None,
    invented: bool,
    failures: list[FailureKind],
    n_cells: int,
    min_parsed: float,
) -> None:
    if rows:
        print_leaderboard(rows, kss_table(rows, min_parsed=min_parsed), min_parsed=min_parsed)
    if invented:
        print(f"\nData: {FIXTURE_NOTE}.")
    experiment = tracker.client.get_experiment(tracker.experiment_id).name
    if report is not None:
        print(f"\nReport: {report}")
    print(f"MLflow: {tracker.uri}  (experiment {experiment!r}, parent run {tracker.parent_run_id})")
    print(f"Open it with:  {tracker.ui_command()}")
    print(f"Runs table:    {tracker.runs_page()}")
    if failures:
        print("", *failure_lines(failures, n_cells), sep="\n", file=sys.stderr)
