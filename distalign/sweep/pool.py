"""Engine pools on Ray: long-lived actors that host engines, one pool per model shared by all of its cells.

A model loads once, in its actor's ``__init__``; a restarted actor (``max_restarts=-1``) reloads it and the
driver re-sends what the dead one had not answered. Actors only compute: the driver owns the response store
and the record. API models share ONE asyncio actor per provider account (provider, base URL, key variable),
so one rate limiter sees every call made with that account, cluster-wide. Keys are named in the config by
variable and read from the driver's environment; they reach the actor as a constructor argument, which Ray
keeps in memory, never in a ``runtime_env``, whose variables Ray writes in plain text to its
``runtime_env_agent.log``.
"""

from __future__ import annotations

import functools
import os
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import ray

from distalign.engines.registry import pool_traits
from distalign.records.config import ModelConfig
from distalign.sweep.engine_pool import Answered, Lost, Outcome, api_concurrency, batches_in_flight
from distalign.sweep.hosts import AsyncEngineHost, EngineHost

#: environment variables a local engine may need, passed through to its actor when the driver has them
PASSTHROUGH_PREFIXES: tuple[str, ...] = ("DISTALIGN_", "HF_", "TRANSFORMERS_", "VLLM_", "CUDA_")
#: passthrough variables with such names (HF_TOKEN, ...) are secrets, handed over like API keys
SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|CREDENTIAL", re.IGNORECASE)
#: batches queued on each local actor: enough work for the engine while the driver plans or scores a cell
IN_FLIGHT_PER_ACTOR = 12


class EngineActor(EngineHost):
    """A local model (hf, vllm, instant) in a Ray actor: one batch at a time."""

    def info(self) -> dict[str, Any]:
        return {"node_id": ray.get_runtime_context().get_node_id(), **super().info()}


class AsyncEngineActor(AsyncEngineHost):
    """An API account in a Ray actor: many batches in flight at once."""

    def info(self) -> dict[str, Any]:
        return {"node_id": ray.get_runtime_context().get_node_id(), **super().info()}


def pool_key(model: ModelConfig) -> str:
    """API models on the same account share a pool; every other model has its own."""
    return pool_traits(model).key


def _secret_names(models: Sequence[ModelConfig]) -> set[str]:
    keys = {name for m in models for name in pool_traits(m).secrets}
    return keys | {k for k in os.environ if k.startswith(PASSTHROUGH_PREFIXES) and SECRET_NAME.search(k)}


def actor_env(models: Sequence[ModelConfig]) -> dict[str, str]:
    """The driver's variables an engine may need that are not secret: they go into the actor's
    ``runtime_env``, which Ray writes to its logs."""
    secret = _secret_names(models)
    return {k: v for k, v in os.environ.items() if k.startswith(PASSTHROUGH_PREFIXES) and k not in secret}


def actor_secrets(models: Sequence[ModelConfig]) -> dict[str, str]:
    """The API keys of these models (and secret passthrough variables) from the driver's environment, for
    the actor's constructor: Ray holds constructor arguments in memory (re-used when it restarts the actor)
    and writes them to no file."""
    return {k: os.environ[k] for k in sorted(_secret_names(models)) if k in os.environ}


def actor_options(models: Sequence[ModelConfig], name: str) -> dict[str, Any]:
    traits = pool_traits(models[0])
    resources: dict[str, float] = {}
    for m in models:
        resources.update(m.serving.resources or {})
    opts: dict[str, Any] = {
        "max_restarts": -1,
        "max_task_retries": 0,  # the driver re-sends, so nothing is answered twice behind its back
        "name": name,
        "resources": resources,
        "runtime_env": {"env_vars": actor_env(models)},
    }
    if traits.api:
        opts.update(num_cpus=0, max_concurrency=api_concurrency(models))
    else:
        opts.update(num_cpus=traits.num_cpus, num_gpus=traits.num_gpus)
    return opts


@dataclass
class Pool:
    key: str
    models: list[ModelConfig]
    actors: list[Any] = field(default_factory=list)
    in_flight: list[int] = field(default_factory=list)

    @functools.cached_property
    def capacity(self) -> int:
        """Batches in flight at once (asked per batch sent: worked out once, after the actors start)."""
        return batches_in_flight(self.models, IN_FLIGHT_PER_ACTOR * len(self.actors))


class RayPool:
    """Starts one pool per model (per account for APIs) when its first batch is submitted, and routes each
    batch to the pool's least busy actor. Implements ``engine_pool.EnginePool``."""

    def __init__(self, models: Mapping[str, ModelConfig]) -> None:
        self.groups: dict[str, list[ModelConfig]] = {}
        for m in models.values():
            self.groups.setdefault(pool_key(m), []).append(m)
        self.pools: dict[str, Pool] = {}
        self.pool_of: dict[str, str] = {m.name: key for key, ms in self.groups.items() for m in ms}
        self.run_id = uuid.uuid4().hex[:8]
        self._tickets: dict[Any, tuple[int, str, int]] = {}  # object ref -> ticket, pool key, actor index
        self._ticket = 0

    def _start(self, key: str) -> Pool:
        ms = self.groups[key]
        traits = pool_traits(ms[0])
        pool = Pool(key, ms)
        cls = ray.remote(AsyncEngineActor if traits.api else EngineActor)
        for i in range(traits.replicas):
            name = f"distalign-{key.replace(':', '-').replace('/', '_')}-{i}-{self.run_id}"
            pool.actors.append(cls.options(**actor_options(ms, name)).remote(ms, actor_secrets(ms)))
            pool.in_flight.append(0)
        self.pools[key] = pool
        return pool

    def _pool(self, model_name: str) -> Pool:
        key = self.pool_of[model_name]
        pool = self.pools.get(key)
        return pool if pool is not None else self._start(key)

    def has_room(self, model: str) -> bool:
        pool = self._pool(model)
        return sum(pool.in_flight) < pool.capacity

    def idle(self, model: str) -> bool:
        return sum(self._pool(model).in_flight) == 0

    def submit(self, model: str, kind: str, requests: Sequence[Any]) -> int:
        pool = self._pool(model)
        i = min(range(len(pool.actors)), key=pool.in_flight.__getitem__)
        pool.in_flight[i] += 1
        self._ticket += 1
        self._tickets[pool.actors[i].run.remote(model, kind, list(requests))] = (self._ticket, pool.key, i)
        return self._ticket

    def poll(self, timeout: float) -> list[Outcome]:
        if not self._tickets:
            return []
        refs = list(self._tickets)
        ready, rest = ray.wait(refs, num_returns=1, timeout=timeout)
        if ready and rest:
            more, _ = ray.wait(rest, num_returns=len(rest), timeout=0)
            ready += more
        out: list[Outcome] = []
        for ref in ready:
            ticket, key, i = self._tickets.pop(ref)
            self.pools[key].in_flight[i] -= 1
            try:
                results, engine_s = ray.get(ref)
            except ray.exceptions.ActorUnavailableError as exc:  # restarting: reloading its model
                out.append(Lost(ticket, f"{type(exc).__name__}: {exc}", restarting=True))
            except Exception as exc:  # noqa: BLE001 - the actor died holding the batch
                out.append(Lost(ticket, f"{type(exc).__name__}: {exc}"))
            else:
                out.append(Answered(ticket, results, engine_s))
        return out

    def stats(self, timeout_s: float = 10.0) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, pool in self.pools.items():
            try:
                out[key] = ray.get([a.stats.remote() for a in pool.actors], timeout=timeout_s)
            except Exception as exc:  # noqa: BLE001 - stats are informative only
                out[key] = [{"error": str(exc)}]
        return out

    def shutdown(self) -> None:
        for pool in self.pools.values():
            for actor in pool.actors:
                ray.kill(actor, no_restart=True)
