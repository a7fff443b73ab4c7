"""Engine pools: long-lived Ray actors that host engines, one pool per model shared by all of its cells.

A model loads once, in its actor's ``__init__``; a restarted actor (``max_restarts=-1``) reloads it and the
driver re-sends what the dead one had not answered. Actors only compute: the driver owns the response store
and the record. API models share ONE asyncio actor per provider account (provider, base URL, key variable),
so one rate limiter sees every call made with that account, cluster-wide. Keys are named in the config by
variable and read from the driver's environment; they reach the actor as a constructor argument, which Ray
keeps in memory, never in a ``runtime_env``, whose variables Ray writes in plain text to its
``runtime_env_agent.log``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import logging
import os
import re
import signal
import socket
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
import ray

from distalign.engines.registry import make_engine, pool_traits
from distalign.engines.secrets import mask
from distalign.errors import InputError
from distalign.records.config import ModelConfig, SweepSettings
from distalign.records.engine import GenerateResult, OptionLogprobResult
from distalign.sweep import ray_internals

log = logging.getLogger(__name__)

KINDS: tuple[str, ...] = ("option_logprobs", "generate")
#: environment variables a local engine may need, passed through to its actor when the driver has them
PASSTHROUGH_PREFIXES: tuple[str, ...] = ("DISTALIGN_", "HF_", "TRANSFORMERS_", "VLLM_", "CUDA_")
#: passthrough variables with such names (HF_TOKEN, ...) are secrets, handed over like API keys
SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|CREDENTIAL", re.IGNORECASE)
LOCAL_OBJECT_STORE_BYTES = 512 * 2**20
#: batches queued on each local actor: enough work for the engine while the driver plans or scores a cell
IN_FLIGHT_PER_ACTOR = 12


def error_results(kind: str, n: int, error: str) -> list[Any]:
    cls = OptionLogprobResult if kind == "option_logprobs" else GenerateResult
    error = mask(error)  # an exception's text may quote a key: masked before it is stored anywhere
    return [cls(error=error) for _ in range(n)]


class _EngineHost:
    """Hosts the engines of one pool (one per model; several only for API accounts)."""

    def __init__(self, models: Sequence[ModelConfig], secrets: Mapping[str, str] | None = None) -> None:
        os.environ.update(secrets or {})  # the engines read their keys from the environment at call time
        self.engines = {m.name: make_engine(m) for m in models}
        self.received = 0
        self.engine_s = 0.0

    def _check(self, kind: str, requests: Sequence[Any], results: Sequence[Any]) -> list[Any]:
        if len(results) != len(requests):
            return error_results(kind, len(requests), f"engine returned {len(results)} for {len(requests)}")
        return list(results)

    def info(self) -> dict[str, Any]:
        return {"node_id": ray.get_runtime_context().get_node_id(), "pid": os.getpid()}

    def stats(self) -> dict[str, Any]:
        out: dict[str, Any] = {"received": self.received, "engine_s": self.engine_s, **self.info()}
        for name, engine in self.engines.items():
            if callable(getattr(engine, "stats", None)):
                out[name] = engine.stats()
        return out


class EngineActor(_EngineHost):
    """A local model (hf, vllm, instant): one batch at a time, the engine batches internally."""

    def run(self, model_name: str, kind: str, requests: Sequence[Any]) -> tuple[list[Any], float]:
        self.received += len(requests)
        t0 = time.perf_counter()
        try:
            results = self._check(kind, requests, getattr(self.engines[model_name], kind)(requests))
        except Exception as exc:  # noqa: BLE001 - an engine failure is data for every request of the batch
            results = error_results(kind, len(requests), f"{type(exc).__name__}: {exc}")
        dt = time.perf_counter() - t0
        self.engine_s += dt
        return results, dt


class AsyncEngineActor(_EngineHost):
    """An API account: many batches in flight at once, sharing the engines' rate limiters."""

    async def run(self, model_name: str, kind: str, requests: Sequence[Any]) -> tuple[list[Any], float]:
        self.received += len(requests)
        engine = self.engines[model_name]
        native = getattr(engine, "a" + kind, None)
        t0 = time.perf_counter()
        try:
            if native is not None and inspect.iscoroutinefunction(native):
                raw = await native(requests)
            else:
                raw = await asyncio.to_thread(getattr(engine, kind), requests)
            results = self._check(kind, requests, raw)
        except Exception as exc:  # noqa: BLE001
            results = error_results(kind, len(requests), f"{type(exc).__name__}: {exc}")
        dt = time.perf_counter() - t0
        self.engine_s += dt
        return results, dt


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
        opts.update(num_cpus=0, max_concurrency=_concurrency(models))
    else:
        opts.update(num_cpus=traits.num_cpus, num_gpus=traits.num_gpus)
    return opts


def _concurrency(models: Sequence[ModelConfig]) -> int:
    """Calls in flight on an API account's actor: the sum over the models that share it."""
    return max(1, sum(pool_traits(m).concurrency for m in models))


#: seconds a cluster's head may take to accept a connection
CONNECT_TIMEOUT_S = 5.0
_UNSET = "unset RAY_ADDRESS / sweep.ray_address to run on a private local Ray"


def ray_address(settings: SweepSettings) -> str | None:
    """The cluster to join (``None``: start a private local Ray)."""
    address = settings.ray_address or os.environ.get("RAY_ADDRESS") or None
    return None if address == "local" else address


def _auto_address() -> str:
    """What ``address="auto"`` joins: the cluster last started on this machine with ``ray start``."""
    try:
        return ray_internals.auto_address() or ""
    except (ConnectionError, ValueError) as exc:
        raise InputError(
            f"ray_address=auto found no running Ray cluster on this machine ({exc}); start one with "
            f"`ray start --head`, or {_UNSET}",
            where="sweep.ray_address",
        ) from None


def check_ray_address(settings: SweepSettings, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """Raise ``InputError`` in seconds when the configured cluster does not accept connections (``ray.init``
    would retry for minutes, logging "Failed to connect to GCS")."""
    address = ray_address(settings)
    if address is None:
        return
    target = _auto_address() if address == "auto" else address
    hostport = target.split("://", 1)[-1].rsplit("/", 1)[0]
    host, _, port = hostport.rpartition(":")
    if not target or not port.isdigit():
        if target:
            raise InputError(
                f"{address!r} is not a Ray address (HOST:PORT, ray://HOST:PORT, auto or local)",
                where="sweep.ray_address",
            )
        return
    host = host.strip("[]") or "127.0.0.1"
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            pass
    except OSError as exc:
        why = exc.strerror or f"no answer within {timeout_s:g} s"
    else:
        why = _gcs_answer(target, host, int(port), timeout_s)
        if why is None:
            return
    raise InputError(
        f"cannot reach the Ray cluster at {target} ({why}); start it with `ray start --head` on that machine "
        f"(or check the address and firewall), or {_UNSET}",
        where="sweep.ray_address",
    )


def _gcs_answer(target: str, host: str, port: int, timeout_s: float) -> str | None:
    """``None`` when a Ray cluster answers at the address, else why not. A GCS (``HOST:PORT``) is asked for
    its cluster id, a Ray Client server (``ray://``) for a gRPC handshake: a listener that never answers,
    or a service that is not Ray's, would otherwise leave ``ray.init`` waiting without end. With TLS
    (``RAY_USE_TLS``) a plain-text probe cannot tell, so none is made."""
    if os.environ.get("RAY_USE_TLS", "0").lower() in ("1", "true"):
        return None
    channel = grpc.insecure_channel(f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
    try:
        if target.startswith("ray://"):
            grpc.channel_ready_future(channel).result(timeout=timeout_s)
            return None
        ray_internals.gcs_answers(channel, timeout_s)
        return None
    except grpc.FutureTimeoutError:
        return f"it accepts connections but gave no gRPC answer within {timeout_s:g} s"
    except grpc.RpcError as exc:
        code = exc.code()
        if code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
            return None  # a GCS that wants the cluster's token: ray.init brings it
        if code == grpc.StatusCode.UNIMPLEMENTED:
            return "a gRPC service answers there, but not a Ray GCS (a Ray Client port needs ray://HOST:PORT)"
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            return f"it accepts connections but gave no Ray answer within {timeout_s:g} s"
        return f"it accepts connections but does not answer as a Ray GCS ({code.name})"
    finally:
        channel.close()


def ensure_ray(settings: SweepSettings) -> bool:
    """Join the configured cluster, or start a local Ray; True when this call started it."""
    if ray.is_initialized():
        return False
    check_ray_address(settings)
    address = ray_address(settings)
    common: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": True}
    try:
        with _signals_held() as received:
            _init(address, settings, common)
        if received:  # Ctrl-C or SIGTERM while Ray started: stop now that it can be stopped cleanly
            raise KeyboardInterrupt
    except BaseException:  # stop the processes started so far, which would outlive us
        with contextlib.suppress(Exception):
            ray.shutdown()
        raise
    return True


@contextlib.contextmanager
def _signals_held() -> Iterator[list[int]]:
    """Holds SIGINT and SIGTERM back while Ray starts, and yields the signals received meanwhile.

    Ray starts its processes with fork hooks; an exception that a signal handler raises inside one (Ray's
    own SIGTERM handler calls ``sys.exit``, Python's SIGINT handler raises ``KeyboardInterrupt``) is
    swallowed by Python and leaves the ``logging`` lock held, so the interrupt is lost and the sweep later
    hangs. Ray's handler is therefore not installed, and ours only records the signal."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def hold(signum: int, frame: Any) -> None:
        received.append(signum)

    previous = {s: signal.signal(s, hold) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        with ray_internals.sigterm_handler_off():
            yield received
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


ray_internals.hide_token_auth_notice()


def _init(address: str | None, settings: SweepSettings, common: dict[str, Any]) -> None:
    if address:
        try:
            ray.init(address=address, **common)
        except ConnectionError as exc:  # something answers there, but not a Ray cluster's GCS
            raise InputError(
                f"{address} accepts connections but no Ray cluster answered there ({exc}); give the "
                f"address of the head node's GCS (the one `ray start --head` printed, port 6379 by default), "
                f"or {_UNSET}",
                where="sweep.ray_address",
            ) from None
    else:
        # address="local": always a fresh private instance; a bare init() would silently join any cluster
        # someone else started on this machine with `ray start`
        ray.init(
            address="local",
            num_cpus=settings.num_cpus,
            include_dashboard=False,
            object_store_memory=LOCAL_OBJECT_STORE_BYTES,
            **common,
        )


@dataclass
class Pool:
    key: str
    models: list[ModelConfig]
    #: an API account's pool (many calls in flight on one actor) rather than local actors
    api: bool = False
    actors: list[Any] = field(default_factory=list)
    in_flight: list[int] = field(default_factory=list)

    @functools.cached_property
    def capacity(self) -> int:
        """Batches in flight at once (asked per batch sent: worked out once, after the actors start)."""
        if self.api:
            return max(2, _concurrency(self.models))
        return IN_FLIGHT_PER_ACTOR * len(self.actors)


class EnginePools:
    """Starts one pool per model (per account for APIs) and routes batches to the least busy actor.

    ``lazy``: a pool starts when its first batch is submitted or on ``start``, so a caller can start the
    engines it will need (actors load their models in the background) while it prepares the rest."""

    def __init__(self, models: Mapping[str, ModelConfig], lazy: bool = False) -> None:
        self.groups: dict[str, list[ModelConfig]] = {}
        for m in models.values():
            self.groups.setdefault(pool_key(m), []).append(m)
        self.pools: dict[str, Pool] = {}
        self.pool_of: dict[str, str] = {m.name: key for key, ms in self.groups.items() for m in ms}
        self.run_id = uuid.uuid4().hex[:8]
        if not lazy:
            for key in self.groups:
                self._start(key)

    def _start(self, key: str) -> Pool:
        ms = self.groups[key]
        traits = pool_traits(ms[0])
        pool = Pool(key, ms, traits.api)
        cls = ray.remote(AsyncEngineActor if traits.api else EngineActor)
        for i in range(traits.replicas):
            name = f"distalign-{key.replace(':', '-').replace('/', '_')}-{i}-{self.run_id}"
            pool.actors.append(cls.options(**actor_options(ms, name)).remote(ms, actor_secrets(ms)))
            pool.in_flight.append(0)
        self.pools[key] = pool
        return pool

    def start(self, model_name: str) -> None:
        """Start the pool that serves this model, unless it runs already (returns at once)."""
        self._pool(model_name)

    def _pool(self, model_name: str) -> Pool:
        key = self.pool_of[model_name]
        pool = self.pools.get(key)
        return pool if pool is not None else self._start(key)

    def has_room(self, model_name: str) -> bool:
        pool = self._pool(model_name)
        return sum(pool.in_flight) < pool.capacity

    def idle(self, model_name: str) -> bool:
        """Nothing in flight on this model's pool."""
        return sum(self._pool(model_name).in_flight) == 0

    def submit(self, model_name: str, kind: str, requests: list[Any]) -> tuple[Any, str, int]:
        pool = self._pool(model_name)
        i = min(range(len(pool.actors)), key=pool.in_flight.__getitem__)
        pool.in_flight[i] += 1
        return pool.actors[i].run.remote(model_name, kind, requests), pool.key, i

    def done(self, pool_key_: str, index: int) -> None:
        self.pools[pool_key_].in_flight[index] -= 1

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
