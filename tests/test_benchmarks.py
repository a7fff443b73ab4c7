"""The overhead benchmark runs end to end (on the shipped fixture) and checks its own record; the figures it
prints are not asserted (timings on a shared machine are noise, see benchmarks/)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_sweep_overhead_runs_the_full_grid_with_both_trackers(tmp_path: Path) -> None:
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "sweep_overhead.py"),
            "--data-dir",
            "fixture",
            "--repeat",
            "1",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    for label in ("no-op tracker", "mlflow tracker"):
        line = next(x for x in out.stdout.splitlines() if x.startswith(label))
        assert "cells 27/27" in line, line
        assert re.search(r"[\d,]+ requests/s", line), line
        assert re.search(rf"end to end, {label}: [\d,]+ requests/s; (meets|misses)", out.stdout)


def test_score_throughput_runs_on_the_fixture(tmp_path: Path) -> None:
    argv = ["--data-dir", "fixture", "--n", "3000", "--naive-n", "100", "--n-resamples", "20"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # this checkout, whatever is installed
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "score_throughput.py"), *argv],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    assert "3,000 predictions" in out.stdout and re.search(r"overall \d+x", out.stdout), out.stdout
