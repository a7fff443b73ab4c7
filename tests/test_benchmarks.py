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


@pytest.mark.slow
def test_api_rate_runs_both_phases_through_the_sweep_and_loses_nothing(tmp_path: Path) -> None:
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "api_rate.py"),
            "--seconds",
            "3",
            "--rpm",
            "1200",
            "--burst-seconds",
            "6",
        ],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},  # Ray's workers import this checkout's package too
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    steady = [x for x in out.stdout.splitlines() if x.startswith("steady:")]
    assert "60 requests received for 60 planned" in steady[0], steady
    assert re.search(r"ratio [\d.]+; .* lost 0, sent twice 0; (meets|misses)", steady[1]), steady
    burst = [x for x in out.stdout.splitlines() if x.startswith("burst:")]
    assert len(burst) == 3, out.stdout
    assert all("lost 0, answered twice 0" in x for x in burst[:2]), burst
    assert int(re.search(r"429s (\d+)", burst[0]).group(1)) > 0  # the burst happened, to account a only
    assert re.search(r"429s 0;", burst[1]), burst
    assert re.search(r"second account during the burst at [\d.]+ of 1200/min", burst[2]), burst


def test_score_release_runs_on_a_sample_of_the_release(release_dir: Path, tmp_path: Path) -> None:
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "score_release.py"),
            "--data-dir",
            str(release_dir),
            "--sample",
            "1500",
            "--n-resamples",
            "50",
            "--format",
            "csv",
        ],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},  # this checkout's package, not an installed one
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "1,500 predictions (csv" in out.stdout
    assert re.search(
        r"read [\d.]+ s  parse [\d.]+ s  score [\d.]+ s  bootstrap [\d.]+ s  write [\d.]+ s", out.stdout
    )
    assert re.search(r"vs the paper's evaluation \(151 s .*\): \d+x faster", out.stdout)


def test_score_throughput_runs_on_the_fixture(tmp_path: Path) -> None:
    argv = ["--data-dir", "fixture", "--n", "3000", "--naive-n", "100", "--n-resamples", "20"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # this checkout, whatever is installed
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "score_throughput.py"), *argv],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    assert "3,000 predictions" in out.stdout and re.search(r"overall \d+x", out.stdout), out.stdout


@pytest.mark.slow
def test_command_latency_times_both_collector_settings_of_each_command(tmp_path: Path) -> None:
    stdout = _bench(tmp_path, "command_latency.py", "--repeat", "1", timeout=600)
    lines = [x for x in stdout.splitlines() if re.search(r": default [\d.]+ s .*tuned [\d.]+ s .*ratio", x)]
    assert [x.split(":")[0] for x in lines] == [
        "sweep (launch.py -m experiment=smoke, inline)",
        "distalign baselines --data-dir fixture",
    ], stdout
    assert re.search(r"sweep tuned/default: [\d.]+; (meets|misses) the target 0.80", stdout)


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
def test_engine_efficiency_prints_the_api_rate_ratio(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "engine_efficiency.py"), "--engines", "api",
         "--api-rpm", "600", "--api-seconds", "5", "--data-dir", "fixture"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert re.search(r"steady: achieved [\d.]+ requests/min at 600 configured: ratio [\d.]+", out.stdout), (
        out.stdout
    )
    assert "lost 0, sent twice 0" in out.stdout, out.stdout


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


@pytest.mark.slow
def test_soak_runs_one_round_with_a_kill_and_checks_its_own_record(tmp_path: Path) -> None:
    stdout = _bench(
        tmp_path, "soak.py", "--rounds", "1", "--items", "2", "--kill-prob", "1", "--timeout", "900"
    )
    assert re.search(r"soak: 1 rounds x 4 concurrent drivers, \d+ drivers in all \((1|0) SIGKILLed", stdout)
    for line in (
        "answers lost: 0",
        "parent runs left RUNNING: 0 of ",
        "requests sent twice by the same command: 0",
    ):
        assert line in stdout, stdout
    assert re.search(r"requests sent twice across different sweeps: \d+ of \d+", stdout)


@pytest.mark.slow
def test_batch_api_sends_every_line_once_and_loses_none(tmp_path: Path) -> None:
    stdout = _bench(tmp_path, "batch_api.py", "--data-dir", "fixture", "--max-items", "2")
    assert re.search(r"lines lost: 0  lines sent twice: 0  synchronous calls: 0", stdout), stdout
    assert re.search(r"(\d+)/\1 cells finished, lines sent by it: 0", stdout), stdout
