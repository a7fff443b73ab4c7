"""What a sweep leaves behind through ``launch.py``: the parent run's record only ever grows, every way out
closes it, failures end in one line per kind, and a dry run fails where the real run would."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.engines.openai_stub import Fault, OpenAIStub
from tests.test_launch import launch, runs

FAST = ("model=instant", "dataset.data_dir=fixture", "dataset.max_items=1", "steering=persona")
TOTALS = ("finished", "requests", "wall_time_s", "cache_hits", "requests_sent")


def _parent(cwd: Path):
    _, parents, children = runs(cwd)
    assert len(parents) == 1
    return parents[0], children


def _no_running(cwd: Path) -> None:
    _, parents, children = runs(cwd)
    running = [r.info.run_name for r in parents + children if r.info.status == "RUNNING"]
    assert running == [], running


@pytest.mark.slow
def test_reruns_never_lower_the_record_and_damaged_cells_are_run_again(tmp_path: Path) -> None:
    grid = (*FAST, "method=seq,verbalize")
    first = launch(tmp_path, *grid, timeout=600)
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-3000:]
    before, children = _parent(tmp_path)
    assert before.info.status == "FINISHED" and before.data.metrics["finished"] == 2
    assert before.data.metrics["requests"] > 0
    for child in children:  # a cell's own time, not the time since the sweep started
        assert 0 < child.data.metrics["wall_time_s"] <= before.data.metrics["wall_time_s"]
    store = sorted(p.name for p in (tmp_path / "store").iterdir())  # the driver closed its response store
    assert len(store) == 1 and store[0].endswith(".sqlite"), store

    again = launch(tmp_path, *grid, timeout=600)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-3000:]
    assert "all 2 cells already finished" in again.stdout
    assert "cells 0/0" not in again.stdout + again.stderr
    after, children = _parent(tmp_path)
    assert after.info.run_id == before.info.run_id and after.info.status == "FINISHED"
    for key in TOTALS:
        assert after.data.metrics[key] == before.data.metrics[key], key
    assert after.data.metrics["attempts"] == 2 and after.data.metrics["attempt.skipped"] == 2
    assert len(children) == 2
    assert "\x1b[" not in again.stdout + again.stderr  # piped: no terminal control codes

    # a damaged items table: one line naming it, the cell is run again (from the store), no new child run
    cell = next((tmp_path / ".distalign" / "sweeps").glob("*/cells/*/items.parquet"))
    cell.write_bytes(cell.read_bytes()[:100])
    third = launch(tmp_path, *grid, timeout=600)
    out = third.stdout + third.stderr
    assert third.returncode == 0, out[-4000:]
    assert "Traceback" not in out
    lines = [ln for ln in third.stderr.splitlines() if "damaged cell file" in ln]
    assert len(lines) == 1 and str(cell.relative_to(tmp_path)) in lines[0], third.stderr[-2000:]
    assert "run again" in lines[0] and "magic bytes" in lines[0], lines[0]
    last, children = _parent(tmp_path)
    assert last.info.status == "FINISHED" and len(children) == 2
    assert last.data.metrics["finished"] == 2 and last.data.metrics["attempts"] == 3
    assert last.data.metrics["requests"] >= before.data.metrics["requests"]
    assert last.data.metrics["wall_time_s"] > before.data.metrics["wall_time_s"]
    assert last.data.metrics["cache_hits"] > before.data.metrics["cache_hits"]  # answered from the store

    # a rerun that fails before doing any work leaves the FINISHED parent FINISHED (and says why, in a line)
    for report in (tmp_path / ".distalign" / "sweeps").glob("*/report"):
        for f in sorted(report.rglob("*"), reverse=True):
            f.rmdir() if f.is_dir() else f.unlink()
        report.rmdir()
        report.write_text("not a folder")
    broken = launch(tmp_path, *grid, timeout=600)
    assert broken.returncode == 2, broken.stdout[-2000:] + broken.stderr[-3000:]
    (line,) = [ln for ln in broken.stderr.splitlines() if ln.startswith("distalign:")]
    assert "report" in line and "not a folder" in line and "Traceback" not in broken.stderr
    final, _ = _parent(tmp_path)
    assert final.info.status == "FINISHED"
    _no_running(tmp_path)


@pytest.mark.slow
def test_a_sweep_whose_every_cell_failed_ends_with_one_line_per_kind(tmp_path: Path) -> None:
    stub = OpenAIStub().start()
    stub.on_marker("", Fault(status=401, body='{"error": {"message": "Incorrect API key"}}'), always=True)
    try:
        proc = launch(
            tmp_path,
            "model=vllm_server",
            "model.weights=openai/stub-model",
            f"model.serving.api_base={stub.base_url}",
            "model.serving.api_key_env=DISTALIGN_TEST_KEY",
            "model.serving.max_retries=0",
            "method=verbalize,seq",
            "steering=persona",
            "dataset.data_dir=fixture",
            "dataset.max_items=1",
            env={"DISTALIGN_TEST_KEY": "sk-test"},
            timeout=600,
        )
    finally:
        stub.stop()
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out[-4000:]
    assert "Traceback" not in out and "no scored rows" not in out, out[-4000:]
    lines = [ln for ln in proc.stderr.splitlines() if "cell(s) of model vllm_server" in ln]
    assert len(lines) == 1, proc.stderr[-3000:]
    assert lines[0].startswith("2 of 2 cell(s)") and "401" in lines[0] and stub.base_url in lines[0]
    assert lines[0].endswith("check DISTALIGN_TEST_KEY")
    parent, children = _parent(tmp_path)
    assert parent.info.status == "FAILED" and parent.data.metrics["failed"] == 2
    _no_running(tmp_path)


def test_a_dry_run_without_the_key_prints_the_plan_then_fails_like_the_real_run(tmp_path: Path) -> None:
    grid = ("model=gpt4,vllm_server", "method=verbalize", "steering=persona", "dataset.data_dir=fixture")
    dry = launch(tmp_path, *grid, "sweep.dry_run=true", env={"OPENAI_API_KEY": ""}, timeout=300)
    real = launch(tmp_path, *grid, env={"OPENAI_API_KEY": ""}, timeout=300)
    assert dry.returncode == real.returncode == 2, dry.stderr[-2000:]
    message = [ln for ln in dry.stderr.splitlines() if ln.startswith("distalign:")]
    assert message == [ln for ln in real.stderr.splitlines() if ln.startswith("distalign:")]
    assert len(message) == 1 and "OPENAI_API_KEY" in message[0] and "Traceback" not in dry.stderr
    assert "cells: 2" in dry.stdout  # the plan came first
    # a partly priced grid shows the known part and names the model without a price
    cost = next(ln for ln in dry.stdout.splitlines() if ln.startswith("estimated cost:"))
    assert cost.startswith("estimated cost: $") and "for gpt4" in cost, cost
    assert "vllm_server with no price" in cost, cost
    assert not (tmp_path / "mlflow.db").exists()


def test_missing_data_names_the_launch_option(tmp_path: Path) -> None:
    proc = launch(tmp_path, "model=instant", "dataset.data_dir=/nonexistent/distalign-data", timeout=300)
    assert proc.returncode == 2
    assert "dataset.data_dir=fixture" in proc.stderr and "--data-dir" not in proc.stderr, proc.stderr


@pytest.mark.parametrize(
    ("weights", "env", "message"),
    [
        ("nosuchorg/nosuchmodel", {"HF_HUB_OFFLINE": "1"}, "not in the local Hugging Face cache"),
        ("/nonexistent/model-folder", {}, "not a model folder here"),
        # hub access allowed: the hub says it does not exist, or cannot be reached (offline machines)
        ("nosuchorg/nosuchmodel", {"HF_HUB_OFFLINE": "0"}, "Hugging Face hub"),
    ],
)
def test_missing_local_weights_fail_in_seconds_with_one_line(
    tmp_path: Path, weights: str, env: dict[str, str], message: str
) -> None:
    proc = launch(
        tmp_path,
        "model=smollm2_135m",
        f"model.weights={weights}",
        *FAST[1:],
        "method=seq",
        env=env,
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr[-3000:]
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("distalign:")]
    assert len(lines) == 1 and message in lines[0] and weights in lines[0], proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "mlflow.db").exists()


def test_help_lists_examples_and_experiments(tmp_path: Path) -> None:
    import subprocess
    import sys

    from tests.conftest import REPO

    proc = subprocess.run(
        [sys.executable, str(REPO / "launch.py"), "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    tail = proc.stdout[proc.stdout.index("== Examples ==") :]
    assert "python launch.py -m experiment=smoke" in tail
    for path in (REPO / "conf" / "experiment").glob("*.yaml"):
        assert f"\n  {path.stem} " in tail, path.stem


def test_a_dry_run_with_missing_data_prints_the_plan_then_fails_like_the_real_run(tmp_path: Path) -> None:
    """One dataset of the grid is missing: the plan of the other is printed, then the real run's line."""
    import shutil

    from distalign.survey.paths import fixture_dir

    data = tmp_path / "data"
    shutil.copytree(fixture_dir() / "opinions_qa", data / "opinions_qa")
    grid = ("model=instant", "dataset=opinionqa,nyt_books", f"dataset.data_dir={data}", "dataset.max_items=1")
    dry = launch(tmp_path, *grid, "sweep.dry_run=true", timeout=300)
    assert dry.returncode == 2, dry.stderr[-2000:]
    assert "cells: 1" in dry.stdout and "covers 1 of 2 cells" in dry.stdout
    (line,) = [ln for ln in dry.stderr.splitlines() if ln.startswith("distalign:")]
    assert "nyt_books" in line and "dataset.data_dir=fixture" in line and "--data-dir" not in line
    assert "Traceback" not in dry.stderr


def test_a_store_that_cannot_be_used_fails_before_any_run_is_opened(tmp_path: Path) -> None:
    """The response store is checked before any run is created or request sent (here: its path is a file):
    one line, exit 2, and no MLflow run left open."""
    store = tmp_path / "store-file"
    store.write_text("not a folder")
    proc = launch(tmp_path, *FAST, "method=seq", env={"DISTALIGN_STORE": str(store)}, timeout=300)
    assert proc.returncode == 2, proc.stderr[-3000:]
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("distalign:")]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert str(store) in lines[0]
    if (tmp_path / "mlflow.db").exists():
        _no_running(tmp_path)
