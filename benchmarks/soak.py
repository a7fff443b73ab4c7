"""Soak: concurrent drivers, random SIGKILLs and reruns over one response store and one MLflow server.

An API model (litellm) against the test suite's loopback OpenAI stub (tests/engines/openai_stub.py), which
records every request and its answer. Each round writes a new custom survey and starts 4 drivers at once
(``python launch.py -m ...``, each its own process): the same command twice (sweep A) and another sweep
sharing all of A's requests under another name, twice (sweep B). A and B talk to two stubs, so that who sent
what is known. One random driver per round is SIGKILLed at a random moment (``--kill-prob``); every command
whose drivers all died or stood aside is then rerun until one finishes. The drivers run their engines
inline (``sweep.executor=inline``: what is soaked is the store, the lock and the record, not Ray's
start-up; ``--executor ray`` has them all join one Ray cluster started here) and share one MLflow server
(``mlflow server`` on a free loopback port) and one store. At the end one check sweep over every round's
survey runs against a third stub: a request it sends was answered before
but is not in the store (an answer lost). Prints:

* answers lost (target 0);
* parent runs left RUNNING on the MLflow server (target 0);
* requests answered twice for the same command (target 0);
* requests answered for both sweeps A and B: the remaining cross-sweep case, counted.

    python benchmarks/soak.py [--rounds 20] [--items 6] [--kill-prob 0.5] [--timeout 3600] [--executor inline]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the loopback OpenAI server lives with the tests

from tests.engines.openai_stub import OpenAIStub  # noqa: E402

ANSWER = '{"Yes": 60, "No": 40}'
KEY_ENV = "DISTALIGN_SOAK_KEY"
BUSY_EXIT = 75  # distalign.sweep.execute.BUSY_EXIT


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_survey(path: Path, n_items: int) -> Path:
    with path.open("w") as f:
        for i in range(n_items):
            row = {
                "item_id": f"Q{i}",
                "question": f"Should the town fund proposal {i} of {path.stem}?",
                "options": ["Yes", "No"],
                "attribute": "ALL",
                "group": "all",
                "probs": [0.5, 0.5],
            }
            f.write(json.dumps(row) + "\n")
    return path


def start_mlflow(work: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    cmd = [
        str(Path(sys.executable).parent / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port),
        "--backend-store-uri", f"sqlite:///{work / 'mlflow.db'}",
        "--default-artifact-root", (work / "mlruns").as_uri(), "--workers", "1",
    ]  # fmt: skip
    log = (work / "mlflow-server.log").open("w")
    # offline, litellm's cost-map fetch deadlocks the server's job runner import: neither is needed here
    env = {
        **os.environ,
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env)
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{uri}/health", timeout=2):
                return proc, uri
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.5)
    stop_group(proc)
    raise SystemExit(f"mlflow server did not start: see {work / 'mlflow-server.log'}")


def stop_group(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def command(stub: OpenAIStub, survey: Path | str, name: str, executor: str = "inline") -> list[str]:
    return [
        sys.executable, str(ROOT / "launch.py"), "-m",
        "model=vllm_server", "model.weights=openai/stub-model", f"model.serving.api_base={stub.base_url}",
        f"model.serving.api_key_env={KEY_ENV}", "model.serving.batch_size=1", "model.serving.max_retries=2",
        "method=verbalize", "steering=none", "dataset=custom", f"dataset.path={survey}",
        f"sweep.name={name}", "sweep.progress=false", f"sweep.executor={executor}",
    ]  # fmt: skip


class Drivers:
    """Starts driver processes and keeps their logs and exit statuses."""

    def __init__(self, work: Path, env: dict[str, str]) -> None:
        self.work, self.env = work, env
        self.count = 0
        self.unexpected: list[str] = []
        self.procs: list[subprocess.Popen] = []

    def start(self, cmd: list[str]) -> tuple[subprocess.Popen, Path]:
        self.count += 1
        log = self.work / "logs" / f"driver-{self.count:03d}.log"
        log.parent.mkdir(exist_ok=True)
        proc = subprocess.Popen(
            cmd, cwd=self.work, env=self.env, stdout=log.open("w"), stderr=subprocess.STDOUT
        )
        self.procs.append(proc)
        return proc, log

    def kill_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    def wait(self, proc: subprocess.Popen, log: Path, deadline: float) -> int:
        try:
            proc.wait(max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            self.unexpected.append(f"{log.name}: timed out")
        code = proc.returncode
        if code not in (0, BUSY_EXIT, -signal.SIGKILL):
            tail = log.read_text(errors="replace").strip().splitlines()[-3:]
            self.unexpected.append(f"{log.name}: exit {code}: {' | '.join(tail)}")
        return code


def answered(stub: OpenAIStub) -> Counter[str]:
    """Answers given (status 200) per distinct request body, the sampling index included."""
    return Counter(json.dumps(r.body, sort_keys=True) for r in list(stub.received) if r.status == 200)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--items", type=int, default=6, help="survey items per round (requests per sweep)")
    parser.add_argument("--kill-prob", type=float, default=0.5, help="chance that a round SIGKILLs a driver")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds for the whole soak")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--executor", choices=("inline", "ray"), default="inline", help="where engines run")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    deadline = time.monotonic() + args.timeout
    work = Path(tempfile.mkdtemp(prefix="distalign-soak-"))
    ray_tmp = Path(tempfile.mkdtemp(prefix="rs", dir="/tmp"))  # Ray's socket paths are length-limited

    import ray

    stubs = {
        k: OpenAIStub(reply=lambda b: [ANSWER] * int(b.get("n") or 1), latency_s=(0.05, 0.3)).start()
        for k in ("A", "B", "check")
    }
    mlflow_proc, mlflow_uri = start_mlflow(work)
    if args.executor == "ray":
        ray.init(num_cpus=4, include_dashboard=False, _temp_dir=str(ray_tmp), log_to_driver=False)
    env = {k: v for k, v in os.environ.items() if k not in {"MLFLOW_TRACKING_URI", "RAY_ADDRESS"}}
    env.update(
        {
            KEY_ENV: "sk-soak-not-a-real-key",
            "DISTALIGN_STORE": str(work / "store"),
            "MLFLOW_TRACKING_URI": mlflow_uri,
            "PYTHONUNBUFFERED": "1",
        }
    )
    if args.executor == "ray":
        env["RAY_ADDRESS"] = ray.get_runtime_context().gcs_address
    drivers = Drivers(work, env)
    kills = reruns = busy = rounds_done = 0
    surveys: list[Path] = []
    t0 = time.monotonic()
    try:
        for r in range(args.rounds):
            if time.monotonic() > deadline:
                break
            survey = write_survey(work / f"round{r:02d}.jsonl", args.items)
            surveys.append(survey)
            cmds = {
                "A": command(stubs["A"], survey, f"soak{r:02d}a", args.executor),
                "B": command(stubs["B"], survey, f"soak{r:02d}b", args.executor),
            }
            started = [(k, *drivers.start(cmds[k])) for k in ("A", "A", "B", "B")]
            if rng.random() < args.kill_prob:  # mid-sweep: once its server has seen a random share of it
                kind = rng.choice(("A", "B"))
                mine = [p for k, p, _ in started if k == kind]
                seen = len(stubs[kind].received) + rng.randint(1, args.items)
                until = time.monotonic() + 300
                while (
                    any(p.poll() is None for p in mine)
                    and len(stubs[kind].received) < seen
                    and time.monotonic() < until
                ):
                    time.sleep(0.02)
                running = [p for p in mine if p.poll() is None]  # the one sending (the other stood aside)
                if running:
                    rng.choice(running).send_signal(signal.SIGKILL)
                    kills += 1
            finished = set()
            for k, proc, log in started:
                code = drivers.wait(proc, log, deadline)
                busy += code == BUSY_EXIT
                if code == 0:
                    finished.add(k)
            for k in ("A", "B"):
                for _ in range(3):
                    if k in finished or time.monotonic() > deadline:
                        break
                    reruns += 1
                    if drivers.wait(*drivers.start(cmds[k]), deadline) == 0:
                        finished.add(k)
            rounds_done += 1
            print(
                f"round {r + 1}: drivers {drivers.count} so far, kills {kills}, reruns {reruns}", flush=True
            )
        check_proc, check_log = drivers.start(
            command(stubs["check"], ",".join(map(str, surveys)), "soakcheck", args.executor)
        )
        check_code = drivers.wait(check_proc, check_log, deadline + 600)
        wall = time.monotonic() - t0

        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=mlflow_uri)
        experiments = [e.experiment_id for e in client.search_experiments()]
        parents = client.search_runs(experiments, "tags.`distalign.kind` = 'sweep'", max_results=5000)
        running = [p for p in parents if p.info.status == "RUNNING"]
    finally:
        drivers.kill_all()
        for stub in stubs.values():
            stub.stop()
        ray.shutdown()
        stop_group(mlflow_proc)

    a, b, check = answered(stubs["A"]), answered(stubs["B"]), stubs["check"].received
    before = a + b
    lost = sum(json.dumps(r.body, sort_keys=True) in before for r in check)
    never = sum(json.dumps(r.body, sort_keys=True) not in before for r in check)
    twice_same = sum(c - 1 for c in a.values()) + sum(c - 1 for c in b.values())
    across = len(set(a) & set(b))
    distinct = len(set(a) | set(b))
    print(
        f"\nsoak: {rounds_done} rounds x 4 concurrent drivers, {drivers.count} drivers in all "
        f"({kills} SIGKILLed, {busy} stood aside for a running driver, {reruns} reruns), {wall:.0f} s wall, "
        f"load {os.getloadavg()[0]:.1f}"
    )
    print(f"requests answered: {sum(before.values())} ({distinct} distinct); check sweep exit {check_code}")
    print(f"answers lost: {lost}" + (f" (and {never} requests never answered before)" if never else ""))
    print(f"parent runs left RUNNING: {len(running)} of {len(parents)}")
    print(f"requests sent twice by the same command: {twice_same}")
    print(f"requests sent twice across different sweeps: {across} of {distinct}")
    if drivers.unexpected:
        print(f"unexpected driver ends: {len(drivers.unexpected)}", *drivers.unexpected[:5], sep="\n  ")
    print(f"work folder: {work}")
    ok = lost == 0 and not running and twice_same == 0 and not drivers.unexpected and check_code == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
