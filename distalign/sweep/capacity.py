"""Does the cluster have the GPUs the planned engine pools need? Asked once, right after ``ray.init``.

Without this check an engine actor that asks for more GPUs than the cluster has stays pending forever: Ray
does not fail an unschedulable actor, so a sweep of a 70B model on a one-GPU box would hang silently. The
need of each actor is taken from the same options the pools start their actors with, so the two cannot
drift apart.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from distalign.engines.registry import pool_traits
from distalign.errors import InputError
from distalign.records.config import CellConfig, ModelConfig
from distalign.sweep.pool import actor_options


@dataclass(frozen=True)
class GpuNeed:
    """The GPUs one model's engine pool reserves: ``per_actor`` on one node, for each of ``replicas``."""

    model: str
    engine: str
    per_actor: float
    replicas: int
    source: str  # the config key that sets per_actor, named in the error message

    @property
    def total(self) -> float:
        return self.per_actor * self.replicas


def _models(cells_or_models: Iterable[CellConfig | ModelConfig]) -> list[ModelConfig]:
    """Distinct models by name (pools are shared by name; validation rejects two configs under one name)."""
    seen: dict[str, ModelConfig] = {}
    for obj in cells_or_models:
        model = obj.model if isinstance(obj, CellConfig) else obj
        seen.setdefault(model.name, model)
    return list(seen.values())


def gpu_need(model: ModelConfig) -> GpuNeed:
    """What ``pool.actor_options`` reserves for this model, times the replicas the pool starts."""
    traits = pool_traits(model)
    per_actor = float(actor_options([model], f"capacity-{model.name}").get("num_gpus", 0) or 0)
    return GpuNeed(model.name, traits.engine, per_actor, traits.replicas, traits.gpus_source)


def gpu_needs(cells_or_models: Iterable[CellConfig | ModelConfig]) -> list[GpuNeed]:
    """The GPU needs of every distinct model that needs any."""
    return [n for n in map(gpu_need, _models(cells_or_models)) if n.per_actor > 0]


def _fmt(x: float) -> str:
    return f"{x:g}"


def check_needs(needs: Sequence[GpuNeed], total_gpus: float, node_gpus: Sequence[float]) -> None:
    """Raise ``InputError`` when the needs cannot fit: too few GPUs in all, or an actor larger than any node
    (an actor's GPUs must all be on one node)."""
    if not needs:
        return
    largest = max(node_gpus, default=0.0)
    required = sum(n.total for n in needs)
    too_big = [n for n in needs if n.per_actor > largest]
    if required <= total_gpus and not too_big:
        return
    lines = [
        f"model {n.model!r} ({n.engine}) needs {_fmt(n.per_actor)} GPU(s) per actor ({n.source}="
        f"{_fmt(n.per_actor)}) x {n.replicas} replica(s) = {_fmt(n.total)}"
        + (f", but no node has {_fmt(n.per_actor)} GPUs" if n in too_big else "")
        for n in needs
    ]
    raise InputError(
        f"the cluster cannot host the planned engine pools: {'; '.join(lines)}. "
        f"Together they need {_fmt(required)} GPU(s); the cluster has {_fmt(total_gpus)} GPU(s) in total, "
        f"at most {_fmt(largest)} on one node ({len(node_gpus)} node(s)). Lower serving.replicas or "
        f"serving.tensor_parallel_size, run fewer models per sweep, or add GPU nodes to the cluster "
        f"(sweep.ray_address / RAY_ADDRESS)",
        where="model.serving",
    )


def cluster_gpus() -> tuple[dict[str, float], list[dict[str, float]]]:
    """The connected Ray cluster's total resources and the resources of each live node."""
    import ray

    nodes = [dict(n.get("Resources") or {}) for n in ray.nodes() if n.get("Alive", n.get("alive", False))]
    return dict(ray.cluster_resources()), nodes


def check_gpu_capacity(
    cells_or_models: Iterable[CellConfig | ModelConfig],
    cluster_resources: Mapping[str, float] | None = None,
    node_resources: Sequence[Mapping[str, Any]] | None = None,
) -> None:
    """Fail before any engine actor starts when the cluster lacks the GPUs the planned pools need.

    With neither mapping given the connected Ray cluster is asked (call it after ``ray.init``); a sweep that
    needs no GPU never asks. ``cluster_resources`` alone describes a single node.
    """
    needs = gpu_needs(cells_or_models)
    if not needs:
        return
    if cluster_resources is None:
        cluster_resources, queried = cluster_gpus()
        node_resources = node_resources if node_resources is not None else queried
    elif node_resources is None:
        node_resources = [cluster_resources]
    total = float(cluster_resources.get("GPU", 0) or 0)
    per_node = [float(n.get("GPU", 0) or 0) for n in node_resources]
    check_needs(needs, total, per_node)
