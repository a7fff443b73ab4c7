"""A Ray cluster and an MLflow server on loopback, started the way docker/docker-compose.yml starts them:
``ray start --head`` + ``ray start --address`` in separate processes, and ``mlflow server``.

Every process is ours and is found again by the unique temp folder in its command line, so cleanup never
touches another Ray on the machine (``ray stop`` would stop them all).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

BIN = Path(sys.executable).parent
START_TIMEOUT_S = 240.0
MLFLOW_SERVER_ENV = {
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
    "MLFLOW_DISABLE_TELEMETRY": "true",
}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _node_ports() -> list[str]:
    """Ports a second node on the same host would otherwise share with the first."""
    return [
        f"--dashboard-agent-listen-port={free_port()}",
        f"--dashboard-agent-grpc-port={free_port()}",
        f"--metrics-export-port={free_port()}",
        f"--runtime-env-agent-port={free_port()}",
        f"--node-manager-port={free_port()}",
        f"--object-manager-port={free_port()}",
    ]


def _pids_mentioning(marker: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            if marker.encode() in (entry / "cmdline").read_bytes():
                pids.append(int(entry.name))
    return pids


def _kill(pids: list[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


@dataclass
class LocalCluster:
    """Addresses and the environment a driver needs: only the documented switches plus the auth token."""

    gcs_address: str
    dashboard_url: str
    tracking_uri: str
    env: dict[str, str]
    logs: Path
    procs: list[subprocess.Popen] = field(default_factory=list)

    def driver_env(self) -> dict[str, str]:
        return {**self.env, "RAY_ADDRESS": self.gcs_address, "MLFLOW_TRACKING_URI": self.tracking_uri}


def _spawn(cmd: list[str], env: dict[str, str], log: Path, procs: list[subprocess.Popen]) -> None:
    out = log.open("wb")
    procs.append(subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True))


def _wait(check, what: str, procs: list[subprocess.Popen], logs: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for p in procs:
            if p.poll() is not None:
                raise RuntimeError(f"{p.args[:3]} exited with {p.returncode}; logs in {logs}")
        with contextlib.suppress(Exception):
            if check():
                return
        time.sleep(0.5)
    raise TimeoutError(f"{what} not ready after {timeout_s:.0f} s; logs in {logs}")


def _http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as r:  # noqa: S310 - loopback only
        return r.status == 200


def _ray_nodes(env: dict[str, str], address: str) -> int:
    code = f"import ray; ray.init(address={address!r}, logging_level='ERROR'); "
    code += "print(sum(n['Alive'] for n in ray.nodes()))"
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60, check=True
    )
    return int(out.stdout.strip().splitlines()[-1])


@contextlib.contextmanager
def local_cluster(worker_cpus: int = 2) -> Iterator[LocalCluster]:
    """Head (no CPUs for work, so every engine actor must land on the worker), one worker, MLflow server."""
    root = Path(tempfile.mkdtemp(prefix="dar", dir="/tmp"))  # short: Ray's socket paths have a length limit
    temp_dir, logs = root / "ray", root / "logs"
    logs.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "MLFLOW_"))}
    env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32), RAY_USAGE_STATS_ENABLED="0")
    gcs_port, dash_port, mlflow_port = free_port(), free_port(), free_port()
    gcs = f"127.0.0.1:{gcs_port}"
    cluster = LocalCluster(gcs, f"http://127.0.0.1:{dash_port}", f"http://127.0.0.1:{mlflow_port}", env, logs)
    ray_bin = str(BIN / "ray")
    common = ["--node-ip-address=127.0.0.1", "--object-store-memory=100000000", "--disable-usage-stats"]
    try:
        _spawn(
            [ray_bin, "start", "--head", f"--port={gcs_port}", "--num-cpus=0", "--num-gpus=0",
             "--include-dashboard=true", "--dashboard-host=127.0.0.1", f"--dashboard-port={dash_port}",
             f"--ray-client-server-port={free_port()}", f"--temp-dir={temp_dir}", "--block",
             *common, *_node_ports()],
            env, logs / "head.log", cluster.procs,
        )  # fmt: skip
        _wait(lambda: _http_ok(cluster.dashboard_url + "/api/gcs_healthz"), "Ray head", cluster.procs, logs,
              START_TIMEOUT_S)  # fmt: skip
        _spawn(
            [ray_bin, "start", f"--address={gcs}", f"--num-cpus={worker_cpus}", "--num-gpus=0", "--block",
             *common, *_node_ports()],
            env, logs / "worker.log", cluster.procs,
        )  # fmt: skip
        _wait(lambda: _ray_nodes(env, gcs) == 2, "Ray worker", cluster.procs, logs, START_TIMEOUT_S)
        # Where litellm is installed, the server's job runner imports it, and its cost-map fetch deadlocks
        # the import offline: the server never comes up. No job runner and no fetch, then.
        mlflow_env = {**env, **MLFLOW_SERVER_ENV}
        _spawn(
            [str(BIN / "mlflow"), "server", "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
             "--artifacts-destination", str(root / "mlartifacts"), "--host", "127.0.0.1",
             "--port", str(mlflow_port), "--workers", "1"],
            mlflow_env, logs / "mlflow.log", cluster.procs,
        )  # fmt: skip
        _wait(lambda: _http_ok(cluster.tracking_uri + "/health"), "MLflow server", cluster.procs, logs,
              START_TIMEOUT_S)  # fmt: skip
        yield cluster
    finally:
        _stop(cluster, str(root))
        shutil.rmtree(root, ignore_errors=True)


def _stop(cluster: LocalCluster, marker: str) -> None:
    for p in cluster.procs:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(p.pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    for p in cluster.procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
    for p in cluster.procs:
        if p.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(p.pid, signal.SIGKILL)
            p.wait(timeout=5)
    # Ray processes that left our process groups still name our temp folder in their command line.
    _kill(_pids_mentioning(marker), signal.SIGKILL)
