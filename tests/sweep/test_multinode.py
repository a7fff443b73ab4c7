"""A head plus two worker "nodes" on this machine: models pinned to different nodes, and an engine actor
killed mid-sweep is restarted while every cell still finishes and nothing answered is sent again."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator

import pytest
import ray
from ray.cluster_utils import Cluster

from distalign.sweep.pool import IN_FLIGHT_PER_ACTOR
from distalign.sweep.runner import run_sweep
from distalign.sweep.trackers import MemoryTracker
from tests.engines.probe_engine import JOURNAL, NAME
from tests.sweep.conftest import grid, probe_model, settings

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    c = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 1, "include_dashboard": False, "object_store_memory": 100 * 2**20},
    )
    c.add_node(num_cpus=1, resources={"node_a": 1}, object_store_memory=100 * 2**20)
    c.add_node(num_cpus=1, resources={"node_b": 1}, object_store_memory=100 * 2**20)
    c.wait_for_nodes()
    ray.init(address=c.address, logging_level="WARNING")
    yield c
    ray.shutdown()
    c.shutdown()


def _kill_when_started(model: str, journal, min_lines: int, killed: list[str], stop: threading.Event) -> None:
    """Kill the model's engine actor once it has received ``min_lines`` requests."""
    prefix, prefix_model = f"distalign-{NAME}-{model}-", f"{model}\t"
    while not stop.wait(0.05):
        lines = journal.read_text().count(prefix_model) if journal.exists() else 0
        if lines < min_lines:
            continue
        match = [
            a["name"] for a in ray.util.list_named_actors(all_namespaces=True) if a["name"].startswith(prefix)
        ]
        if match:
            ray.kill(ray.get_actor(match[0], namespace=ray.get_runtime_context().namespace), no_restart=False)
            killed.append(match[0])
            return


def test_pinned_models_and_a_killed_actor(cluster: Cluster, tmp_path, monkeypatch) -> None:
    journal = tmp_path / "journal.txt"
    monkeypatch.setenv(JOURNAL, str(journal))
    a = probe_model("model_a", resources={"node_a": 1}, num_cpus=0.5, batch_size=8, delay_s=0.2)
    b = probe_model("model_b", resources={"node_b": 1}, num_cpus=0.5, batch_size=8, delay_s=0.2)
    cells = grid(methods=("logprobs", "verbalize"), steerings=("persona",), model=a)
    cells += grid(methods=("logprobs", "verbalize"), steerings=("persona",), model=b)
    killed: list[str] = []
    stop = threading.Event()
    killer = threading.Thread(
        target=_kill_when_started, args=("model_a", journal, 16, killed, stop), daemon=True
    )
    killer.start()
    try:
        out = run_sweep(cells, settings(tmp_path / "store"), MemoryTracker())
    finally:
        stop.set()
        killer.join(timeout=5)

    assert killed, "the engine actor was never killed"
    assert [r.status for r in out.results] == ["finished"] * 4
    nodes = {key: {s["node_id"] for s in stats} for key, stats in out.engine_stats.items()}
    assert nodes[f"{NAME}:model_a"].isdisjoint(nodes[f"{NAME}:model_b"])
    assert len(nodes[f"{NAME}:model_a"] | nodes[f"{NAME}:model_b"]) == 2
    # the restarted actor only counts what it received after the restart
    assert out.engine_stats[f"{NAME}:model_a"][0]["received"] < sum(
        r.metrics["requests"] for r in out.results if r.cell.model.name == "model_a"
    )
    # every request answered exactly once to the driver; only batches in flight at the kill were re-sent
    seen = Counter(journal.read_text().splitlines())
    repeats = sum(n - 1 for n in seen.values())
    assert len(seen) == out.totals["requests"] == out.totals["requests_sent"]
    assert 0 < repeats <= IN_FLIGHT_PER_ACTOR * 8  # at most the batches queued on the killed actor

    again = run_sweep(cells, settings(tmp_path / "store", output_dir=str(tmp_path / "b")), MemoryTracker())
    assert again.totals["requests_sent"] == 0 and len(again.results) == 4
