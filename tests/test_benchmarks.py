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


def _efficiency(engine: str, tmp_path: Path) -> str:
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "engine_efficiency.py"),
            "--data-dir",
            "fixture",
            "--items",
            "1",
            "--engines",
            engine,
            "--datasets",
            "nyt_books",
            "--steerings",
            "none",
            "--verbalize-max-tokens",
            "6",
        ],  # fmt: skip
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=1200,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    # 3 cells (log-probs, sequence, verbalize n=3) of one item: every request answered on both sides
    assert re.search(rf"{engine} engine \(model \w+\): 3 cells, 3 distinct requests", out.stdout), out.stdout
    for side in ("sweep", "raw"):
        assert re.search(rf"^  {side} +3 requests, [\d,]+ output tokens in [\d.]+ s", out.stdout, re.M), (
            out.stdout
        )
    assert re.search(
        rf"{engine}: sweep/raw = [\d.]+ in requests/s, [\d.]+ in output tokens/s; (meets|misses)", out.stdout
    )
    return out.stdout


@pytest.mark.slow
def test_engine_efficiency_hf_runs_a_sweep_and_the_plain_loops(tmp_path: Path) -> None:
    stdout = _efficiency("hf", tmp_path)
    assert "engine calls: option_logprobs 1 x 1" in stdout  # the engine's own timeline reached the sweep


@pytest.mark.slow
@pytest.mark.vllm
def test_engine_efficiency_vllm_runs_a_sweep_and_raw_vllm(tmp_path: Path) -> None:
    pytest.importorskip("vllm")
    _efficiency("vllm", tmp_path)


@pytest.mark.slow
def test_engine_batching_times_the_raw_forward_pass_in_the_same_run() -> None:
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "engine_batching.py"),
            "--prompts",
            "4",
            "--batch",
            "4",
            "--new-tokens",
            "2",
        ],  # fmt: skip
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    for label in ("raw forward", "option_logprobs", "generate"):
        assert re.search(rf"{label}  batch  4: +[\d.]+ prompts/s +\([\d.]+x one at a time", out.stdout), (
            out.stdout
        )
    assert re.search(r"raw forward  batch  1: +[\d.]+ prompts/s +\(\d+ GFLOP/s\)", out.stdout)
