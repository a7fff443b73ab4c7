"""The GPU-capacity check: what each planned engine pool reserves, and a clear error before any actor starts
when the cluster cannot host them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from distalign.errors import InputError
from distalign.records.config import ModelConfig, from_config, serving
from distalign.sweep.capacity import check_gpu_capacity, gpu_needs

REPO = Path(__file__).resolve().parents[2]


def conf_model(name: str, **serving: object) -> ModelConfig:
    """A model exactly as conf/model/<name>.yaml defines it, with serving overrides."""
    node = OmegaConf.merge(OmegaConf.load(REPO / "conf/model" / f"{name}.yaml"), {"serving": serving})
    return from_config(ModelConfig, node)


def vllm_model(name: str, tp: int, replicas: int = 1) -> ModelConfig:
    conf = serving("vllm", device="cuda", tensor_parallel_size=tp, replicas=replicas)
    return ModelConfig(name=name, weights=f"org/{name}", serving=conf)


def test_needs_follow_tensor_parallel_size_and_replicas() -> None:
    needs = {n.model: n for n in gpu_needs([conf_model("llama3_70b", replicas=2), conf_model("llama3_8b")])}
    assert (needs["llama3_70b"].per_actor, needs["llama3_70b"].total) == (4, 8)
    assert (needs["llama3_8b"].per_actor, needs["llama3_8b"].total) == (1, 1)


def test_cpu_and_api_models_need_no_gpu() -> None:
    assert gpu_needs([conf_model("smollm2_135m"), conf_model("gpt4"), conf_model("instant")]) == []
    # ...and the check never asks Ray (none is running here)
    check_gpu_capacity([conf_model("smollm2_135m"), conf_model("gpt4")])


def test_a_model_counts_once_however_many_cells_use_it() -> None:
    needs = gpu_needs([conf_model("llama3_8b"), conf_model("llama3_8b"), conf_model("qwen2_5_7b")])
    assert sorted(n.model for n in needs) == ["llama3_8b", "qwen2_5_7b"]
    check_gpu_capacity([conf_model("llama3_8b")] * 5 + [conf_model("qwen2_5_7b")], {"GPU": 2.0, "CPU": 8.0})


def test_too_few_gpus_in_total_names_every_model_and_the_numbers() -> None:
    models = [conf_model("llama3_8b", replicas=2), conf_model("qwen2_5_7b")]
    with pytest.raises(InputError) as err:
        check_gpu_capacity(models, {"GPU": 2.0}, [{"GPU": 1.0}, {"GPU": 1.0}])
    msg = str(err.value)
    assert "'llama3_8b'" in msg and "x 2 replica(s) = 2" in msg
    assert "'qwen2_5_7b'" in msg
    assert "need 3 GPU(s)" in msg and "has 2 GPU(s) in total" in msg


def test_enough_gpus_in_total_but_none_on_one_node() -> None:
    with pytest.raises(InputError, match=r"'llama3_70b'.*no node has 4 GPUs.*at most 2 on one node"):
        check_gpu_capacity([conf_model("llama3_70b")], {"GPU": 8.0}, [{"GPU": 2.0}] * 4)
    check_gpu_capacity([conf_model("llama3_70b")], {"GPU": 8.0}, [{"GPU": 4.0}, {"GPU": 4.0}])


def test_cluster_resources_alone_describe_one_node() -> None:
    check_gpu_capacity([vllm_model("big", tp=4)], {"GPU": 4.0})
    with pytest.raises(InputError, match="'big'"):
        check_gpu_capacity([vllm_model("big", tp=4)], {"CPU": 16.0})


def test_fractional_gpus_of_local_models_add_up() -> None:
    small = [conf_model("smollm2_135m", device="cuda", num_gpus=0.5, replicas=3)]
    with pytest.raises(InputError, match=r"1\.5"):
        check_gpu_capacity(small, {"GPU": 1.0})
    check_gpu_capacity(small, {"GPU": 2.0})


# -- against a running Ray cluster ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def one_gpu_cluster() -> Iterator[None]:
    """A head without GPUs and one node with a single (fake) GPU."""
    import ray
    from ray.cluster_utils import Cluster

    c = Cluster(
        initialize_head=True,
        head_node_args={
            "num_cpus": 1,
            "num_gpus": 0,
            "include_dashboard": False,
            "object_store_memory": 80 * 2**20,
        },
    )
    c.add_node(num_cpus=1, num_gpus=1, object_store_memory=80 * 2**20)
    c.wait_for_nodes()
    ray.init(address=c.address, logging_level="WARNING")
    try:
        yield
    finally:
        ray.shutdown()
        c.shutdown()


def _distalign_actors() -> list[str]:
    import ray

    return [
        a["name"]
        for a in ray.util.list_named_actors(all_namespaces=True)
        if a["name"].startswith("distalign")
    ]


@pytest.mark.slow
def test_query_of_a_running_cluster(one_gpu_cluster: None) -> None:
    with pytest.raises(InputError) as err:
        check_gpu_capacity([vllm_model("llama_tp4", tp=4)])
    msg = str(err.value)
    assert "'llama_tp4'" in msg and "tensor_parallel_size=4" in msg
    assert "1 GPU(s) in total, at most 1 on one node (2 node(s))" in msg
    check_gpu_capacity([vllm_model("llama_tp1", tp=1)])
    assert _distalign_actors() == []


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_sweep_fails_before_any_actor_starts(one_gpu_cluster: None, tmp_path: Path) -> None:
    """Without the check an actor asking for 4 GPUs would wait forever for a node that has them."""
    from distalign.sweep.runner import run_sweep
    from distalign.sweep.trackers import MemoryTracker
    from tests.sweep.conftest import grid, settings

    model = replace(vllm_model("llama_tp4", tp=4), weights=str(tmp_path))  # weights found: capacity is next
    cells = grid(methods=("logprobs",), steerings=("none",), model=model, max_items=1)
    with pytest.raises(InputError, match=r"'llama_tp4'.*4 GPU\(s\) per actor.*has 1 GPU\(s\) in total"):
        run_sweep(cells, settings(tmp_path / "store"), MemoryTracker())
    assert _distalign_actors() == []
