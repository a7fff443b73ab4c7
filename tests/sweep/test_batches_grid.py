"""The benchmark's grid for GPT-4 and Claude 3 Opus in batch mode against a loopback batch server: every
cell finishes, a second run sends nothing, the numbers equal the synchronous path's, and a driver killed
(SIGKILL) after submitting, or while the provider was accepting its batch, collects its batches on the next
run without sending a line twice."""

from __future__ import annotations

import os
import runpy
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from distalign.engines.batch.ledger import LEDGER
from distalign.sweep import orchestrate
from tests.engines.batch_stub import BatchStub
from tests.sweep.test_papers_grid import UNLIMITED, _cells

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
KEYS = {"OPENAI_API_KEY": "sk-test-openai-5e1d", "ANTHROPIC_API_KEY": "sk-test-anthropic-0c7b"}


def _grid(stub: BatchStub, mode: str) -> list:
    serving = [
        f"model.serving.api_base={stub.base_url}",
        f"model.serving.mode={mode}",
        "model.serving.batch_poll_s=0.05",
        *UNLIMITED,  # the stub has no rate limit; Claude 3 Opus's real 50 requests/min would set the pace
    ]
    return _cells({"gpt4": serving, "claude_3_opus": serving})


def _rows(outcome: orchestrate.Outcome) -> dict[tuple, tuple]:
    return {
        (r["model"], r["method"], r["steering"], r["dataset"]): (
            r["mean"],
            r["ci_low"],
            r["ci_high"],
            r["n"],
            r["extraction_rate"],
        )
        for r in outcome.leaderboard
        if r.get("kind") == "model" and r["mean"] == r["mean"]
    }


def test_the_benchmarks_api_grid_through_batches_equals_the_synchronous_grid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for k, v in KEYS.items():
        monkeypatch.setenv(k, v)
    stub = BatchStub().start()
    try:
        monkeypatch.chdir(tmp_path / "batch" if (tmp_path / "batch").mkdir() is None else None)
        monkeypatch.setenv("DISTALIGN_STORE", str(tmp_path / "batch" / "store"))
        cells = _grid(stub, "batch")
        batch = orchestrate.run(cells)
        assert (
            set(s["status"] for s in batch.summaries.values()) == {"finished"} and len(batch.summaries) == 45
        )
        assert stub.sync_calls == 0 and stub.sent_twice() == 0
        lines = sum(stub.lines.values())
        again = orchestrate.run(cells)  # the same command again: nothing is sent
        assert sum(stub.lines.values()) == lines and stub.sync_calls == 0
        assert _rows(again) == _rows(batch)

        (tmp_path / "sync").mkdir()
        monkeypatch.chdir(tmp_path / "sync")
        monkeypatch.setenv("DISTALIGN_STORE", str(tmp_path / "sync" / "store"))
        sync = orchestrate.run(_grid(stub, "sync"))
        assert stub.sync_calls == lines and sum(stub.lines.values()) == lines
    finally:
        stub.stop()
    assert _rows(sync) == _rows(batch) and len(_rows(batch)) > 20


def _launch(cwd: Path, stub: BatchStub, *extra: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in {"MLFLOW_TRACKING_URI", "RAY_ADDRESS"}}
    env.update(KEYS, DISTALIGN_STORE=str(cwd / "store"), PYTHONUNBUFFERED="1")
    args = [
        sys.executable, str(REPO / "launch.py"), "-m", "experiment=demo", "model=gpt4",
        f"model.serving.api_base={stub.base_url}", "model.serving.mode=batch",
        "model.serving.batch_poll_s=0.05",
        "method=logprobs,verbalize", "dataset.max_items=3", "sweep.progress=false", "sweep.executor=inline",
        *extra,
    ]  # fmt: skip
    return subprocess.Popen(
        args, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def test_a_driver_killed_after_submitting_collects_on_rerun_without_sending_twice(tmp_path: Path) -> None:
    stub = BatchStub().start()
    stub.hold.clear()  # the provider is still working when the driver dies
    try:
        proc = _launch(tmp_path, stub)
        deadline = time.monotonic() + 600
        while not (stub.batches and list(tmp_path.rglob(LEDGER))) and time.monotonic() < deadline:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            time.sleep(0.1)
        time.sleep(0.5)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        sent = sum(stub.lines.values())
        assert sent > 0 and len(stub.batches) == 1
        stub.hold.set()
        rerun = _launch(tmp_path, stub)
        out, _ = rerun.communicate(timeout=900)
        assert rerun.returncode == 0, out[-3000:]
        assert sum(stub.lines.values()) == sent and stub.sent_twice() == 0 and len(stub.batches) == 1
        assert stub.sync_calls == 0
        third = _launch(tmp_path, stub, "sweep.batch_wait=false")
        out3, _ = third.communicate(timeout=900)
        assert third.returncode == 0 and sum(stub.lines.values()) == sent, out3[-3000:]
    finally:
        stub.stop()
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    for key in KEYS.values():
        assert not [p for p in written if key.encode() in p.read_bytes()]


def test_batch_wait_false_exits_with_one_line_and_zero(tmp_path: Path) -> None:
    stub = BatchStub().start()
    stub.hold.clear()
    try:
        proc = _launch(tmp_path, stub, "sweep.batch_wait=false")
        out, _ = proc.communicate(timeout=900)
        assert proc.returncode == 0, out[-3000:]
        assert "1 batches pending; rerun to collect" in out
        stub.hold.set()
        again = _launch(tmp_path, stub, "sweep.batch_wait=false")
        out2, _ = again.communicate(timeout=900)
        assert again.returncode == 0 and "pending" not in out2.split("Leaderboard")[0].split("\n")[-1]
        assert stub.sent_twice() == 0
    finally:
        stub.stop()


#: a driver of one small OpenAI batch-mode grid (``tests.sweep.conftest``'s cells) against the stub at argv[1]
_DRIVER = """
import sys
from distalign.records.config import ModelConfig, serving
from distalign.sweep.runner import run_sweep
from distalign.sweep.trackers import MemoryTracker
from tests.sweep.conftest import grid, settings

def cells(base):
    s = serving("litellm", api_base=base, api_key_env="DISTALIGN_BATCH_KEY", mode="batch", batch_poll_s=0.02)
    model = ModelConfig(name="gpt4", weights="openai/gpt-4-0613", serving=s)
    return grid(methods=("logprobs",), model=model, max_items=3)

if __name__ == "__main__":
    run_sweep(cells(sys.argv[1]), settings(sys.argv[2]), MemoryTracker())
"""


def test_a_driver_killed_while_the_provider_accepts_its_batch_sends_nothing_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """SIGKILL after the provider accepted and recorded a batch but before the driver heard its id: the
    ledger holds only the intent, and the rerun adopts the batch instead of sending its lines again."""
    from distalign.engines.batch.ledger import Ledger
    from distalign.sweep.runner import run_sweep
    from distalign.sweep.trackers import MemoryTracker
    from tests.sweep.conftest import settings

    monkeypatch.setenv("DISTALIGN_BATCH_KEY", KEYS["OPENAI_API_KEY"])
    (tmp_path / "driver.py").write_text(_DRIVER)
    stub = BatchStub(stall_accept_s=120).start()
    try:
        env = {k: v for k, v in os.environ.items() if k not in {"MLFLOW_TRACKING_URI", "RAY_ADDRESS"}}
        env["PYTHONPATH"] = str(REPO)
        args = [sys.executable, str(tmp_path / "driver.py"), stub.base_url, str(tmp_path / "store")]
        proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while not stub.batches and time.monotonic() < deadline:  # accepted: the response is stalled
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        ((folder, ledger),) = [(p.parent, Ledger.load(p.parent)) for p in tmp_path.rglob(LEDGER)]
        assert [(b.state, b.batch_id) for b in ledger.batches] == [("submitting", "")]
        (accepted,) = stub.batches.values()
        sent = sum(stub.lines.values())
        assert sent > 0

        stub.stall_accept_s = 0
        cells = runpy.run_path(str(tmp_path / "driver.py"))["cells"](stub.base_url)  # the same grid
        rerun = run_sweep(cells, settings(tmp_path / "store"), MemoryTracker())
    finally:
        stub.stop()
    assert rerun.totals["finished"] == rerun.totals["cells"] == 2
    assert f"adopted batch {accepted.id}" in capsys.readouterr().out
    assert len(stub.batches) == 1 and sum(stub.lines.values()) == sent and stub.sent_twice() == 0
    assert [(b.batch_id, b.state) for b in Ledger.load(folder).batches] == [(accepted.id, "collected")]
