"""When a local engine was ready and when it was busy, reported through ``stats()``.

A sweep's wall time mixes model loading, the engine's own work and the time the engine sat idle waiting
for the driver. The engine is the only place that knows the first two, so it keeps its load time, the
wall-clock instant it became ready (``time.time()``, comparable across the processes of one machine) and
the span of every call; the sweep hands ``stats()`` back (``SweepOutcome.engine_stats``) and
``benchmarks/engine_efficiency.py`` turns it into serving time, batch sizes and idle gaps.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

#: calls kept with their spans (a long sweep keeps its totals, not every span)
MAX_SPANS = 100_000


@dataclass
class Timeline:
    load_s: float = 0.0
    ready_at: float = 0.0  # time.time() when the model had loaded
    spans: list[tuple[str, int, float, float]] = field(default_factory=list)  # kind, requests, start, end
    calls: int = 0
    requests: int = 0
    busy_s: float = 0.0
    cpu_s: float = 0.0  # this process's CPU time inside calls: less sensitive than busy_s to a shared CPU

    @contextmanager
    def loading(self) -> Iterator[None]:
        start = time.perf_counter()
        yield
        self.load_s = time.perf_counter() - start
        self.ready_at = time.time()

    @contextmanager
    def call(self, kind: str, n_requests: int) -> Iterator[None]:
        start, cpu = time.time(), time.process_time()
        try:
            yield
        finally:
            end = time.time()
            self.cpu_s += time.process_time() - cpu
            self.calls += 1
            self.requests += n_requests
            self.busy_s += end - start
            if len(self.spans) < MAX_SPANS:
                self.spans.append((kind, n_requests, start, end))

    def stats(self) -> dict[str, Any]:
        return {
            "load_s": self.load_s,
            "ready_at": self.ready_at,
            "calls": self.calls,
            "requests": self.requests,
            "busy_s": self.busy_s,
            "cpu_s": self.cpu_s,
            "spans": list(self.spans),
        }
