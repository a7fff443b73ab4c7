"""``python launch.py -m ...`` end to end: Hydra composes the grid, the distalign launcher runs it on a local
Ray, every cell becomes an MLflow child run under one parent, and nothing secret is ever written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import REPO
from tests.engines.openai_stub import OpenAIStub

CELL_METRICS = {
    "tv_mean",
    "tv_ci_low",
    "tv_ci_high",
    "alignment_mean",
    "extraction_rate",
    "prompt_tokens",
    "completion_tokens",
    "cost_usd",
    "wall_time_s",
    "requests",
    "cache_hits",
}
ITEM_COLUMNS = {"prompt_hash", "responses", "pred_probs", "human_probs", "tv", "item_id", "group"}


def launch(
    cwd: Path, *overrides: str, env: dict[str, str] | None = None, timeout: int = 900
) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in {"MLFLOW_TRACKING_URI", "RAY_ADDRESS"}}
    base.update({"DISTALIGN_STORE": str(cwd / "store"), "PYTHONUNBUFFERED": "1"})
    base.update(env or {})
    return subprocess.run(
        [sys.executable, str(REPO / "launch.py"), "-m", *overrides, "sweep.progress=false"],
        cwd=cwd,
        env=base,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def runs(cwd: Path, experiment: str = "distalign") -> tuple[MlflowClient, list, list]:
    client = MlflowClient(f"sqlite:///{cwd / 'mlflow.db'}")
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None, f"no MLflow experiment {experiment!r} in {cwd}"
    all_runs = client.search_runs([exp.experiment_id], max_results=1000)
    parents = [r for r in all_runs if r.data.tags.get("distalign.kind") == "sweep"]
    children = [r for r in all_runs if r.data.tags.get("distalign.kind") == "cell"]
    return client, parents, children


@pytest.mark.slow
def test_six_cells_of_the_default_model_become_six_finished_child_runs(tmp_path: Path) -> None:
    proc = launch(
        tmp_path,
        "model=smollm2_135m",
        "method=seq,verbalize,logprobs",
        "steering=none,persona",
        "dataset.data_dir=fixture",
        "dataset.max_items=2",
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    client, parents, children = runs(tmp_path)
    assert len(parents) == 1
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    assert len(children) == 6
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parent.info.run_id}
    assert len({c.data.tags["distalign.spec_hash"] for c in children}) == 6
    combos = {(c.data.params["method.name"], c.data.params["steering.name"]) for c in children}
    assert combos == {(m, s) for m in ("seq", "verbalize", "logprobs") for s in ("none", "persona")}
    for child in children:
        assert child.info.status == "FINISHED", child.data.tags.get("distalign.error")
        assert CELL_METRICS <= set(child.data.metrics), CELL_METRICS - set(child.data.metrics)
        assert 0.0 <= child.data.metrics["tv_mean"] <= 1.0
        assert (
            child.data.metrics["tv_ci_low"]
            <= child.data.metrics["tv_mean"]
            <= child.data.metrics["tv_ci_high"]
        )
        assert child.data.metrics["requests"] > 0
        assert child.data.params["model.name"] == "smollm2_135m"
        assert child.data.tags["distalign.git_revision"]
        assert "torch" in json.loads(child.data.tags["distalign.packages"])
        names = {a.path for a in client.list_artifacts(child.info.run_id)}
        assert {"items.parquet", "figures"} <= names
        local = client.download_artifacts(child.info.run_id, "items.parquet", str(tmp_path))
        items = pd.read_parquet(local)
        assert ITEM_COLUMNS <= set(items.columns)
        # 2 items; "none" answers once per item and is scored against each of its groups
        assert items["item_id"].nunique() == 2 and items["group"].nunique() >= 2
    parent_artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"leaderboard.json", "report"} <= parent_artifacts
    report = {Path(a.path).name for a in client.list_artifacts(parent.info.run_id, "report")}
    assert {"report.html", "report.md", "tables", "figures"} <= report
    tables = {Path(a.path).name for a in client.list_artifacts(parent.info.run_id, "report/tables")}
    assert {"leaderboard.csv", "kss.csv", "baselines.csv"} <= tables
    assert "| smollm2_135m | verbalize |" in parent.data.tags["mlflow.note.content"]
    assert "mlflow ui --backend-store-uri" in proc.stdout
    # the sweep folder holds every cell and the report the run printed
    folder = next((tmp_path / ".distalign" / "sweeps").iterdir())
    assert len(list((folder / "cells").glob("*/cell.json"))) == 6
    assert f"Report: {folder.relative_to(tmp_path)}/report/report.html" in proc.stdout


@pytest.mark.slow
def test_kambhatla2025_on_the_default_model_logs_the_calibration_table_and_figures(tmp_path: Path) -> None:
    """The supervision grid (reduced to log-probs on two datasets to keep CI short; the full grid is the
    same code with more cells) on SmolLM2: one raw-vs-calibrated table over every dataset x method x
    prompt type with significance marks, learning curves and per-group figures, in the parent run."""
    proc = launch(
        tmp_path,
        "experiment=kambhatla2025",
        "model=smollm2_135m",
        "dataset=opinionqa,nyt_books",
        "method=logprobs",
        "dataset.data_dir=fixture",
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    client, parents, children = runs(tmp_path, "kambhatla2025")
    assert len(parents) == 1 and len(children) == 4
    assert all(c.info.status == "FINISHED" for c in children), [c.data.tags for c in children]
    calibrated = {"calibrated_tv_mean", "calibrated_alignment_mean", "raw_tv_test_mean", "tv_mean"}
    assert all(calibrated <= set(c.data.metrics) for c in children)
    parent = parents[0].info.run_id
    local = client.download_artifacts(parent, "report/tables/calibration_table.csv", str(tmp_path))
    table = pd.read_csv(local, keep_default_na=False)
    cells = {(r.dataset, r.method, r.steering) for r in table.itertuples()}
    assert cells == {(d, "logprobs", s) for d in ("opinionqa", "nyt_books") for s in ("base", "sd")}
    for metric in ("alignment", "tv"):
        raw, cal = table[f"{metric}_raw"], table[f"{metric}_calibrated"]
        assert raw.between(0, 1).all() and cal.between(0, 1).all()
        assert table[f"{metric}_mark"].isin(["", "*"]).all()
        assert (table[f"{metric}_mark"] == "*").eq(table[f"{metric}_significant"]).all()
    figures = {Path(a.path).name for a in client.list_artifacts(parent, "report/figures")}
    assert {"group_effects.png", "learning_curves.png", "spread.png", "leaderboard.png"} <= figures


@pytest.mark.slow
def test_no_secret_is_written_anywhere(tmp_path: Path) -> None:
    secret = "sk-distalign-test-7f3a9c1e5b"
    stub = OpenAIStub(reply=lambda body: ['{"A": 40, "B": 35, "C": 25}'] * int(body.get("n") or 1)).start()
    try:
        proc = launch(
            tmp_path,
            "model=vllm_server",
            "model.weights=openai/stub-model",
            f"model.serving.api_base={stub.base_url}",
            "model.serving.api_key_env=DISTALIGN_TEST_KEY",
            "model.serving.max_retries=0",
            "method=verbalize",
            "steering=persona",
            "dataset.data_dir=fixture",
            "dataset.max_items=1",
            env={"DISTALIGN_TEST_KEY": secret},
            timeout=600,
        )
    finally:
        stub.stop()
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    # the key was really used: the server saw it
    assert any(
        secret in r.headers.get("Authorization", r.headers.get("authorization", "")) for r in stub.received
    )
    assert secret not in proc.stdout and secret not in proc.stderr
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "config.yaml" for p in written) and any(p.suffix == ".parquet" for p in written)
    leaks = [str(p) for p in written if secret.encode() in p.read_bytes()]
    assert not leaks, f"secret written to {leaks}"
    _, _, children = runs(tmp_path)
    for child in children:
        everything = json.dumps([child.data.params, child.data.tags, child.data.metrics])
        assert secret not in everything


@pytest.mark.parametrize(
    ("overrides", "env", "message"),
    [
        (["model.no_such_key=1"], {}, "no_such_key"),
        (["model=claude_3_opus", "method=logprobs"], {"ANTHROPIC_API_KEY": "x"}, "logprobs"),
        (["model=gpt4", "method=verbalize"], {"OPENAI_API_KEY": ""}, "OPENAI_API_KEY"),
        (["dataset.data_dir=/nonexistent/distalign-data"], {}, "/nonexistent/distalign-data"),
        (["method=no_such_method"], {}, "no_such_method"),
    ],
)
def test_bad_configuration_fails_before_anything_starts(
    tmp_path: Path, overrides: list[str], env: dict[str, str], message: str
) -> None:
    data = [] if any(o.startswith("dataset.") for o in overrides) else ["dataset.data_dir=fixture"]
    proc = launch(tmp_path, "steering=persona", *data, *overrides, env=env, timeout=300)
    assert proc.returncode != 0
    assert message in proc.stdout + proc.stderr
    assert not (tmp_path / "mlflow.db").exists(), "the tracking store was opened before validation failed"
    assert "Started a local Ray instance" not in proc.stdout + proc.stderr


def test_dry_run_prints_the_plan_without_keys_or_model_calls(tmp_path: Path) -> None:
    proc = launch(
        tmp_path,
        "model=gpt4,smollm2_135m",
        "method=verbalize",
        "steering=none,persona",
        "dataset.data_dir=fixture",
        "dataset.max_items=2",
        "sweep.dry_run=true",
        env={"OPENAI_API_KEY": ""},
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "cells: 4" in proc.stdout and "after de-duplication" in proc.stdout
    gpt4 = next(line for line in proc.stdout.splitlines() if line.startswith("gpt4"))
    assert "unknown" not in gpt4  # priced from litellm's bundled table
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "store").exists()
