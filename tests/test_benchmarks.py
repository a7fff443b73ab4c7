"""The overhead benchmark runs end to end (on the shipped fixture) and checks its own record; the figures it
prints are not asserted (timings on a shared machine are noise, see benchmarks/)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _bench(tmp_path: Path, script: str, *args: str, timeout: int = 900) -> str:
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


@pytest.mark.slow
def test_sweep_overhead_runs_the_full_grid_with_both_trackers_and_the_simulated_engine(
    tmp_path: Path,
) -> None:
    stdout = _bench(tmp_path, "sweep_overhead.py", "--data-dir", "fixture", "--repeat", "1")
    for label in ("no-op tracker", "mlflow tracker", "engine-bound (mlflow)"):
        line = next(x for x in stdout.splitlines() if x.startswith(label))
        assert "cells 27/27" in line, line
        assert re.search(r"[\d,]+ requests/s", line) and re.search(r"wall/engine [\d.]+", line), line
    assert re.search(r"end to end, mlflow tracker, requests/s: [\d,.]+; (meets|misses)", stdout)
    assert re.search(r"engine-bound ratio .*: [\d.]+; (meets|misses) the target 1.15", stdout)


@pytest.mark.slow
def test_sweep_scale_runs_and_resumes_on_the_sample(tmp_path: Path) -> None:
    stdout = _bench(tmp_path, "sweep_scale.py", "--data-dir", "fixture", "--sizes", "1,2", "--resume")
    sizes = re.findall(r"^\s+(\d+)x\s+rows\s+([\d,]+)\s+requests\s+([\d,]+)", stdout, flags=re.M)
    assert [s[0] for s in sizes] == ["1", "2"]
    one, two = (int(s[2].replace(",", "")) for s in sizes)
    assert two == 2 * one > 0  # twice the survey, twice the requests
    assert re.search(r"resume 2x: killed with \d+ of 9 cells written; .*: ok", stdout), stdout
