"""A sweep against a real multi-process Ray cluster and an MLflow server, switched on by the documented
environment variables only (RAY_ADDRESS, MLFLOW_TRACKING_URI), as docs/cluster.md tells a user to do.

The head offers no CPUs, so an engine actor can only run on the worker that joined with ``ray start
--address``; a driver that silently started its own local Ray instead fails the node check.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deploy.local_cluster import LocalCluster, local_cluster

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
SWEEP_TIMEOUT_S = 420


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    with local_cluster(worker_cpus=2) as c:
        yield c


def _sweep(cluster: LocalCluster, cwd: Path, *overrides: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, str(REPO / "launch.py"), "-m", *overrides, "sweep.progress=false"]
    proc = subprocess.run(
        cmd, cwd=cwd, env=cluster.driver_env(), capture_output=True, text=True, timeout=SWEEP_TIMEOUT_S
    )
    assert proc.returncode == 0, (
        f"sweep failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    )
    return proc


def _runs(cluster: LocalCluster, experiment: str) -> tuple[object, list[object]]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=cluster.tracking_uri)
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None, f"experiment {experiment!r} is not on the server"
    return client, client.search_runs([exp.experiment_id], max_results=1000)


def _actor_nodes(cluster: LocalCluster) -> dict[str, object]:
    """Which nodes the sweep's engine actors ran on, asked of the cluster's state API."""
    code = f"""
import json
from ray.util.state import list_actors, list_nodes
nodes = list_nodes(address={cluster.dashboard_url!r})
actors = list_actors(address={cluster.dashboard_url!r}, detail=True, limit=1000)
print(json.dumps({{
    "head": [n.node_id for n in nodes if n.is_head_node],
    "workers": [n.node_id for n in nodes if not n.is_head_node],
    "actors": [[a.name, a.node_id] for a in actors if (a.name or "").startswith("distalign-")],
}}))
"""
    out = subprocess.run(
        [sys.executable, "-c", code], env=cluster.env, capture_output=True, text=True, timeout=120, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _check_sweep(cluster: LocalCluster, cwd: Path, experiment: str, n_cells: int, actor_prefix: str) -> None:
    assert not (cwd / "mlflow.db").exists(), "the sweep logged to a local store, not to the server"
    client, runs = _runs(cluster, experiment)
    parents = [r for r in runs if r.data.tags.get("distalign.kind") == "sweep"]
    cells = [r for r in runs if r.data.tags.get("distalign.kind") == "cell"]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert len(cells) == n_cells
    assert {r.info.status for r in cells} == {"FINISHED"}
    assert {r.data.tags["mlflow.parentRunId"] for r in cells} == {parents[0].info.run_id}
    assert all(r.data.metrics for r in cells), "a cell run has no metrics"
    assert client.list_artifacts(cells[0].info.run_id), "no artifact reached the server's artifact store"

    placed = _actor_nodes(cluster)
    ours = [node for name, node in placed["actors"] if name.startswith(actor_prefix)]
    assert ours, f"no {actor_prefix}* actor ran on the cluster: {placed}"
    assert set(ours) <= set(placed["workers"]), f"engine actors outside the worker node: {placed}"


def test_smoke_sweep_on_cluster(cluster: LocalCluster, tmp_path: Path) -> None:
    _sweep(cluster, tmp_path, "experiment=smoke")
    # experiment=smoke: 2 steering modes x 3 methods on the instant engine
    _check_sweep(cluster, tmp_path, "distalign-smoke", 6, "distalign-instant-")


def test_default_model_sweep_on_cluster(cluster: LocalCluster, tmp_path: Path) -> None:
    _sweep(
        cluster,
        tmp_path,
        "model=smollm2_135m",
        "dataset.data_dir=fixture",
        "dataset.max_items=2",
        "method=logprobs",
        "steering=none",
    )
    _check_sweep(cluster, tmp_path, "distalign", 1, "distalign-hf-smollm2_135m-")
