"""One driver per sweep folder; one creator of a local MLflow store at a time."""

from __future__ import annotations

import multiprocessing
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from distalign.sweep.lock import SweepBusy, SweepLock, tracking_store_lock

HOLD = """
import sys, time
from distalign.sweep.lock import SweepLock
lock = SweepLock(sys.argv[1]).acquire()
print("held", flush=True)
time.sleep(600)
"""


def test_a_second_driver_is_told_who_holds_the_folder_and_a_killed_holder_frees_it(tmp_path: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(SweepBusy) as busy:
            SweepLock(tmp_path).acquire()
        message = str(busy.value)
        assert f"pid {holder.pid} on {socket.gethostname()}, started " in message and "\n" not in message
        assert str(tmp_path) in message
        holder.send_signal(signal.SIGKILL)  # no clean-up runs: the kernel drops the lock
        holder.wait(30)
        with SweepLock(tmp_path):
            pass
    finally:
        if holder.poll() is None:
            holder.kill()


def _create_store(uri: str, ready: multiprocessing.synchronize.Barrier) -> None:  # type: ignore[name-defined]
    from mlflow.tracking import MlflowClient

    ready.wait(120)  # every process has imported MLflow: they open the store at the same moment
    with tracking_store_lock(uri):
        MlflowClient(tracking_uri=uri).search_experiments()


@pytest.mark.slow
def test_two_first_runs_create_one_mlflow_store(tmp_path: Path) -> None:
    """Four processes open a fresh SQLite tracking store at the same moment: all succeed (MLflow's schema
    creation alone races: "duplicate column name")."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Barrier(4)
    procs = [ctx.Process(target=_create_store, args=(uri, ready)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(300)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    assert os.path.getsize(tmp_path / "mlflow.db") > 0
