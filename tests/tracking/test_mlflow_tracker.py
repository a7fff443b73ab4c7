"""The MLflow tracker on its own: a child run per cell with params, tags, metrics, the items table and the
TV figure; finished cells are found again on resume, a failed one is not."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from distalign.sweep.config import spec_hash
from distalign.sweep.results import ITEM_COLUMNS, CellResult
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
    run_id = tracker.log_cell(CellResult(hashes[0], done, "finished", None, _items(12), metrics))
    tracker.log_cell(CellResult(hashes[1], broken, "failed", "2 of 9 requests failed"))

    run = tracker.client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags[TAG_SPEC] == hashes[0]
    assert run.data.tags["mlflow.parentRunId"] == tracker.parent_run_id
    assert run.data.params["method.name"] == "logprobs" and run.data.params["steering.name"] == "persona"
    assert run.data.metrics == {"tv_mean": 0.3, "tv_ci_low": 0.2, "tv_ci_high": 0.4}  # NaN is not logged
    local = tracker.client.download_artifacts(run_id, ITEMS_ARTIFACT, str(tmp_path))
    assert pd.read_parquet(local)["tv"].tolist() == pytest.approx(_items(12)["tv"].tolist())
    figure = tracker.client.download_artifacts(run_id, "figures/tv_hist.png", str(tmp_path))
    assert Path(figure).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    again = MLflowTracker(store, "exp", "sweep", hashes)
    assert again.resumed and again.parent_run_id == tracker.parent_run_id
    assert again.finished_cells() == {hashes[0]}  # the failed cell is redone
    assert len(again.finished_items()) == 12
