"""Engine hosts: the objects that hold loaded engines and answer batches, wherever they live.

A Ray actor (``sweep.pool``) or the driver itself (``sweep.inline_pool``) hosts them; either way a batch
gets one result per request, and an engine failure becomes an error result for every request of the batch
(errors are data), so a host never raises for a bad batch.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

from distalign.engines.registry import make_engine
from distalign.engines.secrets import mask
from distalign.records.config import ModelConfig
from distalign.records.engine import GenerateResult, OptionLogprobResult

KINDS: tuple[str, ...] = ("option_logprobs", "generate")


def error_results(kind: str, n: int, error: str) -> list[Any]:
    cls = OptionLogprobResult if kind == "option_logprobs" else GenerateResult
    error = mask(error)  # an exception's text may quote a key: masked before it is stored anywhere
    return [cls(error=error) for _ in range(n)]


class EngineHost:
    """Hosts the engines of one pool (one per model; several only for API accounts) and answers one batch
    at a time; the engine batches internally."""

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
        return {"pid": os.getpid()}

    def stats(self) -> dict[str, Any]:
        out: dict[str, Any] = {"received": self.received, "engine_s": self.engine_s, **self.info()}
        for name, engine in self.engines.items():
            if callable(getattr(engine, "stats", None)):
                out[name] = engine.stats()
        return out

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


class AsyncEngineHost(EngineHost):
    """An API account: many batches in flight at once, sharing the engines' rate limiters."""

    async def run(  # type: ignore[override]
        self, model_name: str, kind: str, requests: Sequence[Any]
    ) -> tuple[list[Any], float]:
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
