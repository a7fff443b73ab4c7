"""A sweep read back from a real local MLflow store into the sweep folder format."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from distalign.errors import InputError
from distalign.scoring.results import read_items, read_records
from distalign.tracking.readback import download_sweep
from tests.report.conftest import make_items


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.chdir(tmp_path)
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


def _cell(
    client: MlflowClient, exp: str, parent: str, spec: str, items: pd.DataFrame | None, status: str
) -> str:
    tags = {"mlflow.parentRunId": parent, "distalign.spec_hash": spec, "distalign.kind": "cell"}
    run = client.create_run(exp, run_name=f"m/{spec}", tags=tags)
    rid = run.info.run_id
    client.log_param(rid, "model.name", "m")
    client.log_param(rid, "method.name", "seq")
    client.log_metric(rid, "tv_mean", 0.25)
    if items is not None:
        with tempfile.TemporaryDirectory() as tmp:
            items.to_parquet(Path(tmp) / "items.parquet", index=False)
            client.log_artifact(rid, str(Path(tmp) / "items.parquet"))
    client.set_terminated(rid, status=status)
    return rid


def test_child_runs_become_cell_folders(store: str, tmp_path: Path) -> None:
    client = MlflowClient(tracking_uri=store)
    exp = client.create_experiment("sweep", artifact_location=(tmp_path / "mlruns").as_uri())
    parent = client.create_run(exp, run_name="sweep", tags={"distalign.kind": "sweep"}).info.run_id
    a = make_items(
        models=("m",), methods=("seq",), steerings=("persona",), datasets=("nyt_books",), n_items=2
    )
    b = make_items(
        models=("m",), methods=("seq",), steerings=("few_shot",), datasets=("nyt_books",), n_items=3
    )
    _cell(client, exp, parent, "aaaa", a.assign(tv=0.9), "KILLED")  # a crashed first attempt
    time.sleep(0.01)
    kept = _cell(client, exp, parent, "aaaa", a, "FINISHED")
    _cell(client, exp, parent, "bbbb", b, "FINISHED")
    _cell(client, exp, parent, "cccc", None, "FINISHED")  # finished but its table never arrived
    other = client.create_run(exp, run_name="another sweep").info.run_id
    _cell(client, exp, other, "dddd", a, "FINISHED")

    dest = download_sweep(parent, store, tmp_path / "back")
    records = {r["spec_hash"]: r for r in read_records(dest)}
    assert set(records) == {"aaaa", "bbbb", "cccc"}
    assert records["aaaa"]["status"] == "finished" and records["aaaa"]["mlflow_run_id"] == kept
    assert records["aaaa"]["metrics"] == {"tv_mean": 0.25}
    assert records["aaaa"]["cell"] == {"model": {"name": "m"}, "method": {"name": "seq"}}
    assert records["cccc"]["status"] == "failed" and "items.parquet" in records["cccc"]["error"]
    back = read_items(dest).sort_values(["steering", "item_id", "group"]).reset_index(drop=True)
    want = pd.concat([a, b]).sort_values(["steering", "item_id", "group"]).reset_index(drop=True)
    assert back["tv"].tolist() == pytest.approx(want["tv"].tolist())
    assert np.allclose(np.stack(back["pred_probs"].map(list)), np.stack(want["pred_probs"]))


def test_unknown_or_childless_runs_are_named(store: str, tmp_path: Path) -> None:
    client = MlflowClient(tracking_uri=store)
    exp = client.create_experiment("sweep", artifact_location=(tmp_path / "mlruns").as_uri())
    lonely = client.create_run(exp).info.run_id
    with pytest.raises(InputError, match="no cell runs"):
        download_sweep(lonely, store, tmp_path / "x")
    with pytest.raises(InputError, match="no MLflow run"):
        download_sweep("0" * 32, store, tmp_path / "y")
