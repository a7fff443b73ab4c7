"""SIGKILL the driver mid-sweep, rerun: the sweep finishes, only missing requests are sent, and the results
equal those of an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from distalign.engines.store import ResponseStore
from distalign.scoring.results import read_items
from distalign.sweep.cells import resolve
from distalign.sweep.plan import plan_cell
from distalign.sweep.runner import run_sweep
from distalign.sweep.trackers import MemoryTracker
from tests.engines.probe_engine import JOURNAL
from tests.sweep.conftest import grid, probe_model, settings

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
DRIVER = """
import sys
from distalign.sweep.runner import run_sweep
from tests.sweep.conftest import grid, probe_model, settings
model = probe_model(batch_size=8, delay_s=0.2)
cells = grid(methods=("logprobs", "verbalize"), steerings=("persona",), model=model)
run_sweep(cells, settings(sys.argv[1]))
"""


def _cells() -> list:
    return grid(methods=("logprobs", "verbalize"), steerings=("persona",), model=probe_model(batch_size=8))


def _lines(path: Path) -> int:
    return path.read_text().count("\n") if path.exists() else 0


def test_killed_driver_resumes(tmp_path, monkeypatch, local_ray) -> None:
    journal, store = tmp_path / "journal.txt", tmp_path / "store"
    cells = _cells()
    keys = [k for c in cells for k in plan_cell(resolve(c)).requests]
    env = {**os.environ, JOURNAL: str(journal)}
    env.pop("RAY_ADDRESS", None)
    proc = subprocess.Popen(
        [sys.executable, "-c", DRIVER, str(store)], cwd=REPO, env=env, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.time() + 120
        while proc.poll() is None and time.time() < deadline:
            if len(ResponseStore(store).get_many(keys)) >= 16:
                break
            time.sleep(0.1)
        assert proc.poll() is None, "the driver finished before it could be killed"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and the local Ray it started
        proc.wait(timeout=30)

    stored = len(ResponseStore(store).get_many(keys))
    assert 16 <= stored < len(keys)

    rerun_journal = tmp_path / "rerun-journal.txt"  # the killed run's workers may linger a moment
    monkeypatch.setenv(JOURNAL, str(rerun_journal))
    resumed = run_sweep(cells, settings(store), MemoryTracker())
    assert all(r.status == "finished" for r in resumed.results)
    assert resumed.totals["finished"] + resumed.totals["skipped"] == len(cells)
    assert resumed.totals["requests_sent"] == len(keys) - stored == _lines(rerun_journal)

    monkeypatch.delenv(JOURNAL)
    reference = run_sweep(cells, settings(tmp_path / "reference"), MemoryTracker())
    order = ["model", "method", "steering", "dataset", "item_id", "attribute", "group"]
    a = read_items(resumed.folder, status=None).sort_values(order, ignore_index=True)
    b = read_items(reference.folder, status=None).sort_values(order, ignore_index=True)
    assert len(a) == len(b) > 0
    pd.testing.assert_frame_equal(a, b)
