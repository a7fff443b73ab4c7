"""The MLflow tracker on its own: a child run per cell with params, tags, metrics, the items table and the
TV figure; finished cells are found again on resume, a failed one is not."""

from __future__ import annotations

import itertools
import os
import signal
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from distalign.records.config import spec_hash
from distalign.records.results import ITEM_COLUMNS, CellResult
from distalign.tracking.mlflow_tracker import ITEMS_ARTIFACT, TAG_SPEC, MLflowTracker
from tests.sweep.conftest import make_cell


def _items(n: int) -> pd.DataFrame:
    tv = np.linspace(0.05, 0.6, n)
    rows = {c: [None] * n for c in ITEM_COLUMNS}
    rows.update(
        dataset=["opinionqa"] * n,
        item_id=[f"Q{i}" for i in range(n)],
        group=["Democrat"] * n,
        status=["ok"] * n,
        tv=tv,
        alignment=1 - tv,
        pred_probs=[[0.5, 0.5]] * n,
        human_probs=[[0.25, 0.75]] * n,
    )
    return pd.DataFrame(rows)


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.chdir(tmp_path)  # the local artifact root is ./mlruns
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


def test_cells_become_child_runs_and_are_found_again_on_resume(store: str, tmp_path: Path) -> None:
    done, broken = make_cell("logprobs", "persona"), make_cell("seq", "persona")
    hashes = [spec_hash(done), spec_hash(broken)]
    tracker = MLflowTracker(store, "exp", "sweep", hashes)
    metrics = {"tv_mean": 0.3, "tv_ci_low": 0.2, "tv_ci_high": 0.4, "cost_usd": float("nan")}
    run_id = tracker.log_cell(CellResult(hashes[0], done, "finished", None, _items(12), metrics)).result()
    tracker.log_cell(CellResult(hashes[1], broken, "failed", "2 of 9 requests failed"))
    tracker.flush()

    run = tracker.client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags[TAG_SPEC] == hashes[0]
    assert run.data.tags["mlflow.parentRunId"] == tracker.parent_run_id
    assert run.data.params["method.name"] == "logprobs" and run.data.params["steering.name"] == "persona"
    assert run.data.metrics == {"tv_mean": 0.3, "tv_ci_low": 0.2, "tv_ci_high": 0.4}  # NaN is not logged
    local = tracker.client.download_artifacts(run_id, ITEMS_ARTIFACT, str(tmp_path))
    assert pd.read_parquet(local)["tv"].tolist() == pytest.approx(_items(12)["tv"].tolist())
    figure = tracker.client.download_artifacts(run_id, "figures/tv_hist.svg", str(tmp_path))
    assert "<svg" in Path(figure).read_text()

    again = MLflowTracker(store, "exp", "sweep", hashes)
    assert again.resumed and again.parent_run_id == tracker.parent_run_id
    assert again.finished_cells() == {hashes[0]}  # the failed cell is redone
    assert len(again.finished_items()) == 12
    tracker.close()
    again.close()


def _cells(n: int) -> list[CellResult]:
    out = []
    for method, steering in list(itertools.product(("logprobs", "seq", "verbalize"), ("none", "persona")))[
        :n
    ]:
        cell = make_cell(method, steering)
        out.append(CellResult(spec_hash(cell), cell, "finished", None, _items(6), {"tv_mean": 0.2}))
    return out


def _runs(tracker: MLflowTracker) -> list:
    return tracker._children()


def test_cells_are_written_by_a_process_of_their_own(store: str) -> None:
    results = _cells(3)
    tracker = MLflowTracker(store, "exp", "sweep", [r.spec_hash for r in results])
    assert tracker._writer is not None
    assert tracker._writer.pid.result(timeout=60) != os.getpid()
    futures = [tracker.log_cell(r) for r in results]
    tracker.flush()
    assert all(f.done() for f in futures)
    runs = _runs(tracker)
    assert sorted(r.data.tags[TAG_SPEC] for r in runs) == sorted(r.spec_hash for r in results)
    assert {r.info.status for r in runs} == {"FINISHED"}
    tracker.finish()
    assert tracker.client.get_run(tracker.parent_run_id).info.status == "FINISHED"


def test_cells_the_writer_died_holding_are_written_from_the_driver(store: str) -> None:
    results = _cells(4)
    tracker = MLflowTracker(store, "exp", "sweep", [r.spec_hash for r in results])
    assert tracker._writer is not None
    tracker.log_cell(results[0]).result(timeout=60)
    os.kill(tracker._writer.pid.result(), signal.SIGKILL)
    for r in results[1:]:
        tracker.log_cell(r)
    tracker.flush()
    assert tracker._writer is None  # the rest of the sweep logs from the driver
    finished = [r for r in _runs(tracker) if r.info.status == "FINISHED"]
    assert sorted(r.data.tags[TAG_SPEC] for r in finished) == sorted(r.spec_hash for r in results)
    assert tracker.finished_cells() == {r.spec_hash for r in results}
    tracker.close()


def test_a_cell_that_cannot_travel_is_written_from_the_driver_in_order(store: str) -> None:
    @dataclass(frozen=True)
    class LocalResult(CellResult):  # a local class cannot be pickled
        pass

    first, second = _cells(2)
    odd = LocalResult(second.spec_hash, second.cell, "finished", None, _items(3), {"tv_mean": 0.5})
    tracker = MLflowTracker(store, "exp", "sweep", [first.spec_hash, second.spec_hash])
    tracker.log_cell(first)
    assert tracker.log_cell(odd).done()  # written before log_cell returned, after the queued cell
    assert tracker.finished_cells() == {first.spec_hash, second.spec_hash}
    tracker.close()


def test_a_cell_the_writer_fails_to_write_stops_the_sweep(store: str) -> None:
    good, bad = _cells(2)
    broken = CellResult(bad.spec_hash, None, "finished", None, _items(3), {})  # type: ignore[arg-type]
    tracker = MLflowTracker(store, "exp", "sweep", [good.spec_hash, bad.spec_hash])
    tracker.log_cell(broken)
    with pytest.raises(AttributeError):
        tracker.flush()
    tracker.log_cell(good)
    tracker.close()
    assert tracker.finished_cells() == {good.spec_hash}
