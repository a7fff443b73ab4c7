"""The interface between the sweep's driver and whatever hosts its engines.

The driver submits batches and polls for what came back; it never sees Ray. ``sweep.pool`` hosts engines
in Ray actors (one pool per model, API accounts on one asyncio actor; ``sweep.executor=ray``, the default,
and the only host that uses more than one process or machine); ``sweep.inline_pool`` runs them in the
driver's own process (``sweep.executor=inline``), which is what a debugger, a profiler or a test wants.
Both answer with the same outcomes, so the driver's scheduling, de-duplication, retries and recording are
one piece of code whichever hosts the engines.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from distalign.engines.registry import pool_traits
from distalign.records.config import ModelConfig


@dataclass(frozen=True)
class Answered:
    """A batch's results, one per request, in order (a failed request is an error result, not an
    exception), and the seconds its engine spent on it."""

    ticket: int
    results: list[Any]
    engine_s: float


@dataclass(frozen=True)
class Lost:
    """A batch that came back without results: its host died holding it (``restarting`` False: the driver
    re-sends it a bounded number of times) or is reloading its model (``restarting`` True: it is waited
    for)."""

    ticket: int
    error: str
    restarting: bool = False


Outcome = Answered | Lost


def api_concurrency(models: Sequence[ModelConfig]) -> int:
    """Calls in flight on one API account: the sum over the models that share it."""
    return max(1, sum(pool_traits(m).concurrency for m in models))


def batches_in_flight(models: Sequence[ModelConfig], local: int) -> int:
    """How many batches a pool of these models keeps in flight, whichever hosts it: an API account as many
    as its calls allow (at least 2, so the next batch is ready when one returns); local engines ``local``
    (what their host can hold without a batch waiting long in a queue)."""
    if pool_traits(models[0]).api:
        return max(2, api_concurrency(models))
    return local


class EnginePool(Protocol):
    """Hosts the engines of a sweep's models; batches go in by model, outcomes come back by ticket."""

    def has_room(self, model: str) -> bool:
        """Whether another batch for this model would be worked on soon rather than wait in a queue."""
        ...

    def idle(self, model: str) -> bool:
        """Nothing of this model is in flight (a partial batch is then better than an idle engine)."""
        ...

    def submit(self, model: str, kind: str, requests: Sequence[Any]) -> int:
        """Send a batch of one request kind (``option_logprobs`` or ``generate``); returns its ticket."""
        ...

    def poll(self, timeout: float) -> list[Outcome]:
        """The batches that came back, waiting up to ``timeout`` seconds for the first one."""
        ...

    def stats(self) -> dict[str, Any]:
        """What each host served, by pool (informative: the sweep records it)."""
        ...

    def shutdown(self) -> None: ...
