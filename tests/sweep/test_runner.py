"""run_sweep's logic (de-duplication, resume, errors as data, recording) with its engines inline over the
shipped fixture: no Ray. One test runs the same sweep on Ray and compares."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from distalign.records.results import ITEM_COLUMNS, METRIC_NAMES
from distalign.sweep import runner
from distalign.sweep.cells import cell_hash as spec_hash
from distalign.sweep.runner import run_sweep
from distalign.sweep.trackers import MemoryTracker
from tests.engines.probe_engine import FAIL, JOURNAL
from tests.sweep.conftest import grid, probe_model, settings


def inline(store, **kw):  # type: ignore[no-untyped-def]
    return settings(store, executor="inline", **kw)


def _journal_lines(path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_sweep_finishes_then_reruns_from_the_store(tmp_path, monkeypatch) -> None:
    journal = tmp_path / "journal.txt"
    monkeypatch.setenv(JOURNAL, str(journal))
    cells = grid(model=probe_model())  # 3 methods x none/persona on the opinionqa fixture
    first_tracker = MemoryTracker()
    first = run_sweep(cells, inline(tmp_path / "store"), first_tracker)

    assert [r.status for r in first.results] == ["finished"] * 6
    assert {r.spec_hash for r in first_tracker.logged} == {spec_hash(c) for c in cells}
    sent = len(_journal_lines(journal))
    assert sent == first.totals["requests"] == first.totals["requests_sent"] > 0
    for r in first.results:
        assert set(METRIC_NAMES) <= set(r.metrics)
        assert list(r.items.columns) == list(ITEM_COLUMNS)
        assert 0 <= r.metrics["tv_ci_low"] <= r.metrics["tv_mean"] <= r.metrics["tv_ci_high"] <= 1
        assert r.items["prompt_hash"].notna().all() and r.items["responses"].str.len().gt(2).all()
    survey_pairs = len(first.results[0].items)
    # no-steering units are scored against every group, so both steering modes cover every pair
    assert all(len(r.items) == survey_pairs for r in first.results)

    # a new sweep folder: every cell runs again, answered from the store
    second = run_sweep(cells, inline(tmp_path / "store", output_dir=str(tmp_path / "b")), MemoryTracker())
    assert len(_journal_lines(journal)) == sent  # the engine saw nothing new
    assert second.totals["requests_sent"] == 0 and second.totals["cache_hits"] == first.totals["requests"]
    for a, b in zip(first.results, second.results, strict=True):
        pd.testing.assert_frame_equal(a.items, b.items)
        assert b.metrics["cache_hits"] == b.metrics["requests"]


def test_finished_cells_are_skipped_and_recorded_once(tmp_path) -> None:
    """A rerun skips the cells its sweep folder holds as finished; one the tracker has not recorded (a
    crash between writing the cell and recording it) is handed to the tracker from disk, not re-run."""
    cells = grid(methods=("logprobs",), steerings=("none", "persona"))
    first = run_sweep(cells[:1], inline(tmp_path / "store"), MemoryTracker(), folder=tmp_path / "sweep")
    assert first.results[0].status == "finished"
    tracker = MemoryTracker()
    out = run_sweep(cells, inline(tmp_path / "store"), tracker, folder=tmp_path / "sweep")
    assert [r.spec_hash for r in out.results] == [spec_hash(cells[1])]
    assert out.totals["skipped"] == 1
    assert sorted(r.spec_hash for r in tracker.logged) == sorted(map(spec_hash, cells))
    recovered = next(r for r in tracker.logged if r.spec_hash == spec_hash(cells[0]))
    pd.testing.assert_frame_equal(
        recovered.items[["item_id", "tv"]], first.results[0].items[["item_id", "tv"]], check_dtype=False
    )
    again = run_sweep(cells, inline(tmp_path / "store"), tracker, folder=tmp_path / "sweep")
    assert again.results == [] and again.totals["skipped"] == 2 and len(tracker.logged) == 2


def test_a_cell_that_fails_to_score_does_not_stop_the_sweep(tmp_path, monkeypatch) -> None:
    cells = grid(methods=("logprobs", "seq"), steerings=("none",))
    doomed = spec_hash(cells[0])
    real = runner.score_cell

    def flaky(cp, *args, **kw):
        if cp.spec_hash == doomed:
            raise RuntimeError("boom")
        return real(cp, *args, **kw)

    monkeypatch.setattr(runner, "score_cell", flaky)
    out = run_sweep(cells, inline(tmp_path / "store"), MemoryTracker())
    status = {r.spec_hash: r.status for r in out.results}
    assert status == {doomed: "failed", spec_hash(cells[1]): "finished"}
    assert out.failures == [(doomed, "scoring failed: RuntimeError: boom")]


def test_failed_requests_leave_units_unparsed_and_the_cell_to_be_retried(tmp_path, monkeypatch) -> None:
    """Engine errors are data: the cell is still scored and logged (unparsed units count as uniform), but
    it is not finished, and the rerun re-sends exactly the failed requests and finishes it."""
    cells = grid(methods=("logprobs",), steerings=("none",), model=probe_model())
    monkeypatch.setenv(FAIL, "option_logprobs")
    tracker = MemoryTracker()
    out = run_sweep(cells, inline(tmp_path / "store"), tracker)
    (result,) = out.results
    assert result.status == "failed" and "requests failed" in (result.error or "")
    assert result.metrics["extraction_rate"] == 0.0
    assert result.metrics["failed_requests"] == result.metrics["requests"]
    assert (result.items["status"] == "unparsed").all()
    assert np.isfinite(result.items["tv"]).all()  # scored as uniform under the default policy
    assert not tracker.finished_cells()

    monkeypatch.delenv(FAIL)
    again = run_sweep(cells, inline(tmp_path / "store"), tracker)  # a failed cell is not finished: re-run
    (retried,) = again.results
    assert retried.status == "finished"
    assert again.totals["requests_sent"] == result.metrics["requests"]
    assert (retried.items["status"] != "unparsed").all()


class _Recording(MemoryTracker):
    """Counts flushes; optionally interrupted (Ctrl-C) while the second cell is handed over."""

    def __init__(self, interrupt_at: int | None = None) -> None:
        super().__init__()
        self.interrupt_at, self.flushes, self.logged_when_flushed = interrupt_at, 0, -1

    def log_cell(self, result) -> None:  # type: ignore[no-untyped-def]
        if self.interrupt_at is not None and len(self.logged) == self.interrupt_at:
            raise KeyboardInterrupt
        super().log_cell(result)

    def flush(self) -> None:
        self.flushes += 1
        self.logged_when_flushed = len(self.logged)


def test_the_sweep_waits_for_its_record_before_it_returns(tmp_path) -> None:
    cells = grid(methods=("logprobs", "seq"), steerings=("none",))
    tracker = _Recording()
    run_sweep(cells, inline(tmp_path / "store"), tracker)
    assert tracker.flushes == 1 and tracker.logged_when_flushed == len(cells)


def test_an_interrupted_sweep_still_records_the_cells_it_finished(tmp_path) -> None:
    cells = grid(methods=("logprobs", "seq"), steerings=("none",))
    tracker = _Recording(interrupt_at=1)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(cells, inline(tmp_path / "store"), tracker)
    assert tracker.flushes == 1 and tracker.logged_when_flushed == 1


@pytest.mark.slow
def test_the_same_sweep_on_ray_gives_the_same_results_and_sends_the_same_requests(
    tmp_path, local_ray
) -> None:
    """The Ray pool is another host behind the same interface: same answers, same counts."""
    cells = grid(steerings=("persona",))
    on_ray = run_sweep(cells, settings(tmp_path / "ray"), MemoryTracker())
    here = run_sweep(cells, inline(tmp_path / "inline"), MemoryTracker())
    for key in ("requests", "requests_sent", "cache_hits", "finished"):
        assert on_ray.totals[key] == here.totals[key], key
    assert on_ray.totals["requests_sent"] > 0
    for a, b in zip(on_ray.results, here.results, strict=True):
        pd.testing.assert_frame_equal(a.items, b.items)
    (ray_stats,) = on_ray.engine_stats.values()
    assert ray_stats[0]["received"] == on_ray.totals["requests_sent"] and "node_id" in ray_stats[0]
