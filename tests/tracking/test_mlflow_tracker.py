"""The MLflow tracker on its own: a child run per cell with params, tags, metrics, the items table and the
TV figure, written by one background thread; finished cells are found again on resume (and never written
twice), a failed one is not."""

from __future__ import annotations

import itertools
import json
import threading
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pandas as pd
import pytest

from distalign.records.results import ITEM_COLUMNS, CellResult
from distalign.scoring.scores import cell_scores
from distalign.sweep.cells import cell_hash
from distalign.tracking.mlflow_tracker import ITEMS_ARTIFACT, TAG_SPEC, TV_FIGURE, MLflowTracker
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


def _hash(cell) -> str:  # type: ignore[no-untyped-def]
    return cell_hash(cell)


def test_cells_become_child_runs_and_are_found_again_on_resume(store: str, tmp_path: Path) -> None:
    done, broken = make_cell("logprobs", "persona"), make_cell("seq", "persona")
    hashes = [_hash(done), _hash(broken)]
    content = {"dataset": "d" * 64, "templates": "t" * 64}
    tracker = MLflowTracker(store, "exp", "sweep", "sweep-id")
    metrics = {"tv_mean": 0.3, "tv_ci_low": 0.2, "tv_ci_high": 0.4, "cost_usd": float("nan")}
    result = CellResult(
        hashes[0], done, "finished", None, _items(12), metrics, content=content, batch_ids=("b-1", "b-2")
    )
    run_id = tracker.log_cell(result).result()
    tracker.log_cell(CellResult(hashes[1], broken, "failed", "2 of 9 requests failed"))
    tracker.flush()

    run = tracker.client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags[TAG_SPEC] == hashes[0]
    assert run.data.tags["distalign.batch_ids"] == "b-1,b-2"  # batch mode: the batches that answered it
    assert run.data.tags["mlflow.parentRunId"] == tracker.parent_run_id
    assert run.data.params["method.name"] == "logprobs" and run.data.params["steering.name"] == "persona"
    assert run.data.params["content.dataset"] == "d" * 64 and run.data.params["dataset.data_dir"] == "fixture"
    assert run.data.metrics == {"tv_mean": 0.3, "tv_ci_low": 0.2, "tv_ci_high": 0.4}  # NaN is not logged
    local = tracker.client.download_artifacts(run_id, ITEMS_ARTIFACT, str(tmp_path))
    assert pd.read_parquet(local)["tv"].tolist() == pytest.approx(_items(12)["tv"].tolist())
    figure = tracker.client.download_artifacts(run_id, f"figures/{TV_FIGURE}", str(tmp_path))
    assert Path(figure).read_bytes().startswith(b"\x89PNG")

    again = MLflowTracker(store, "exp", "sweep", "sweep-id")
    assert again.resumed and again.parent_run_id == tracker.parent_run_id
    assert again.finished_cells() == {hashes[0]}  # the failed cell is redone
    assert again.log_cell(result).result() is None  # a finished cell is never written twice
    assert len(tracker._children("FINISHED")) == 1
    tracker.close()
    again.close()


def _cells(n: int) -> list[CellResult]:
    pairs = list(itertools.product(("logprobs", "seq", "verbalize"), ("none", "persona")))[:n]
    out = []
    for method, steering in pairs:
        cell = make_cell(method, steering)
        out.append(CellResult(_hash(cell), cell, "finished", None, _items(6), {"tv_mean": 0.2}))
    return out


def test_cells_are_written_in_the_background_in_order(store: str) -> None:
    results = _cells(3)
    tracker = MLflowTracker(store, "exp", "sweep", "sweep-id")
    writers: list[str] = []
    real = tracker._cells.log

    def spy(result):  # type: ignore[no-untyped-def]
        writers.append(threading.current_thread().name)
        return real(result)

    tracker._cells.log = spy  # type: ignore[method-assign]
    futures = [tracker.log_cell(r) for r in results]
    tracker.flush()
    assert all(f.done() for f in futures)
    assert len(set(writers)) == 1 and writers[0] != threading.main_thread().name
    runs = sorted(tracker._children(), key=lambda r: r.info.start_time)
    assert [r.data.tags[TAG_SPEC] for r in runs] == [r.spec_hash for r in results]
    assert {r.info.status for r in runs} == {"FINISHED"}
    tracker.set_description("| model | TV |")
    tracker.finish()
    parent = tracker.client.get_run(tracker.parent_run_id)
    assert parent.info.status == "FINISHED" and parent.data.tags["mlflow.note.content"] == "| model | TV |"


def test_an_interrupted_sweep_closes_its_parent_run_as_killed(store: str) -> None:
    tracker = MLflowTracker(store, "exp", "sweep", "sweep-id")
    tracker.log_cell(_cells(1)[0])
    tracker.finish("KILLED")
    assert tracker.client.get_run(tracker.parent_run_id).info.status == "KILLED"
    assert tracker._children("FINISHED")  # the finished cell stays finished


def test_a_cell_that_fails_to_be_written_stops_the_sweep(store: str) -> None:
    good, bad = _cells(2)
    broken = CellResult(bad.spec_hash, None, "finished", None, _items(3), {})  # type: ignore[arg-type]
    tracker = MLflowTracker(store, "exp", "sweep", "sweep-id")
    tracker.log_cell(broken)
    with pytest.raises(AttributeError):
        tracker.flush()
    tracker.log_cell(good)
    tracker.close()
    assert tracker.finished_cells() == {good.spec_hash}


def test_the_runs_table_reads_at_a_glance(store: str) -> None:
    """The experiment opens on MLflow's runs view (tagged as an ML experiment, also when it existed), the
    child runs' names differ early, and no param repeats another."""
    tracker = MLflowTracker(store, "exp", "sweep", "sweep-id")
    cells = [make_cell(m, s) for m in ("seq", "verbalize", "logprobs") for s in ("none", "persona")]
    for cell in cells:
        tracker.log_cell(CellResult(_hash(cell), cell, "finished", None, _items(3), {"tv_mean": 0.3}))
    tracker.flush()
    experiment = tracker.client.get_experiment(tracker.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    children = tracker._children()
    names = [r.info.run_name for r in children]
    assert len({n[:20] for n in names}) == len(cells)
    params = children[0].data.params
    assert "steering.steering" not in params and params["steering.name"] in ("none", "persona")
    tracker.close()
    # an experiment created before the tag existed gets it when a sweep opens it again
    tracker.client.delete_experiment_tag(tracker.experiment_id, "mlflow.experimentKind")
    MLflowTracker(store, "exp", "sweep", "sweep-id").close()
    assert tracker.client.get_experiment(tracker.experiment_id).tags["mlflow.experimentKind"] == (
        "custom_model_development"
    )


def test_the_runs_table_shows_the_key_metrics_as_columns(store: str) -> None:
    """The experiment carries a stored view whose columns are TV, its interval and the extraction rate,
    named as a scored cell logs them, and the runs page the sweep prints opens that view; an experiment
    made before the view existed gets it when a sweep opens it again."""
    tracker = MLflowTracker(store, "exp", "sweep", "sweep-id")
    scored = pd.DataFrame({"row": [0, 1, 2], "status": ["ok"] * 3, "tv": [0.1, 0.2, 0.4]})
    scored["alignment"] = 1 - scored["tv"]
    logged = cell_scores(scored, n_resamples=50)
    tags = tracker.client.get_experiment(tracker.experiment_id).tags
    key = parse_qs(urlsplit(tracker.runs_page().split("#", 1)[1]).query)["viewStateShareKey"][0]
    view = json.loads(tags[f"mlflow.sharedViewState.{key}"])
    metric_columns = [c for c in view["selectedColumns"] if c.startswith("metrics.")]
    assert metric_columns == [
        f"metrics.`{m}`" for m in ("tv_mean", "tv_ci_low", "tv_ci_high", "extraction_rate")
    ]
    assert all(c[len("metrics.`") : -1] in logged for c in metric_columns)
    tracker.close()
    tracker.client.delete_experiment_tag(tracker.experiment_id, f"mlflow.sharedViewState.{key}")
    MLflowTracker(store, "exp", "sweep", "sweep-id").close()
    assert (
        tracker.client.get_experiment(tracker.experiment_id).tags[f"mlflow.sharedViewState.{key}"]
        == (tags[f"mlflow.sharedViewState.{key}"])
    )
