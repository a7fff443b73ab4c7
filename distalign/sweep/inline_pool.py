"""Engines hosted in the driver's own process (``sweep.executor=inline``).

No Ray, no actors, no second process: a batch is answered when the driver polls, so a breakpoint in an
engine or a parser stops the sweep where it is, a profiler sees every frame, and a sweep of the instant
engine starts in a fraction of a second. An API account's batches run concurrently on one event loop (its
rate limiter sees them all); local models answer one batch at a time. It uses one machine and one process:
the Ray pool (``sweep.executor=ray``, the default) is for everything larger.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

from distalign.engines.registry import pool_traits
from distalign.records.config import ModelConfig
from distalign.sweep.engine_pool import Answered, Outcome, batches_in_flight
from distalign.sweep.hosts import AsyncEngineHost, EngineHost

#: batches a local model may have waiting: enough that the driver plans ahead while one is answered
LOCAL_QUEUE = 2


class InlinePool:
    """One host per pool key (per model; per account for APIs), built when its first batch is submitted."""

    def __init__(self, models: Mapping[str, ModelConfig]) -> None:
        self.groups: dict[str, list[ModelConfig]] = {}
        for m in models.values():
            self.groups.setdefault(pool_traits(m).key, []).append(m)
        self.pool_of = {m.name: key for key, ms in self.groups.items() for m in ms}
        self.hosts: dict[str, EngineHost] = {}
        self.queued: dict[str, deque[tuple[int, str, str, Sequence[Any]]]] = {k: deque() for k in self.groups}
        self._ticket = 0
        self._loop: asyncio.AbstractEventLoop | None = None  # one loop: rate limiters outlive a batch

    def _host(self, key: str) -> EngineHost:
        host = self.hosts.get(key)
        if host is None:
            ms = self.groups[key]
            host = (AsyncEngineHost if pool_traits(ms[0]).api else EngineHost)(ms)
            self.hosts[key] = host
        return host

    def has_room(self, model: str) -> bool:
        key = self.pool_of[model]
        return len(self.queued[key]) < batches_in_flight(self.groups[key], LOCAL_QUEUE)

    def idle(self, model: str) -> bool:
        return not self.queued[self.pool_of[model]]

    def submit(self, model: str, kind: str, requests: Sequence[Any]) -> int:
        key = self.pool_of[model]
        self._host(key)  # the model loads now, as a Ray pool's actor would on its first batch
        self._ticket += 1
        self.queued[key].append((self._ticket, model, kind, requests))
        return self._ticket

    def poll(self, timeout: float) -> list[Outcome]:
        """Answers every queued batch now (``timeout`` does not apply: the work is done here)."""
        out: list[Outcome] = []
        for key, queue in self.queued.items():
            if not queue:
                continue
            batches = list(queue)
            queue.clear()
            host = self.hosts[key]
            if isinstance(host, AsyncEngineHost):
                self._loop = self._loop or asyncio.new_event_loop()
                answers = self._loop.run_until_complete(_gather(host, batches))
            else:
                answers = [host.run(model, kind, reqs) for _, model, kind, reqs in batches]
            out.extend(
                Answered(ticket, results, engine_s)
                for (ticket, *_), (results, engine_s) in zip(batches, answers, strict=True)
            )
        return out

    def stats(self) -> dict[str, Any]:
        return {key: [host.stats()] for key, host in self.hosts.items()}

    def shutdown(self) -> None:
        if self._loop is not None:
            self._loop.close()
            self._loop = None
        self.hosts.clear()
        for queue in self.queued.values():
            queue.clear()


async def _gather(host: AsyncEngineHost, batches: list[tuple[int, str, str, Sequence[Any]]]) -> list[Any]:
    return await asyncio.gather(*(host.run(model, kind, reqs) for _, model, kind, reqs in batches))
