"""A virtual clock for asyncio code that takes ``clock`` and ``sleep`` (the rate limiter, the API engine)."""

from __future__ import annotations

import asyncio
import heapq
from typing import Any

from distalign.engines.ratelimit import RateLimiter


class VirtualTime:
    """A clock that moves only when every task sleeps, straight to the earliest wake-up: pacing is checked to
    the microsecond whatever the load on the machine, with concurrent callers interleaved as in real time.

    Only sleeps take virtual time: a task waiting on the network does not hold the clock back, so with real
    HTTP calls in flight, ``now`` says how long the code chose to wait, not how long the calls took."""

    def __init__(self) -> None:
        self.now = 0.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._count = 0
        self._advancing = False

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        wake: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + seconds, self._count, wake))
        self._count += 1
        self._schedule()
        await wake

    def _schedule(self) -> None:
        """Advance after the tasks that are ready now have run (callbacks run in the order scheduled)."""
        if not self._advancing:
            self._advancing = True
            asyncio.get_running_loop().call_soon(self._advance)

    def _advance(self) -> None:
        self._advancing = False
        if not self._sleepers:
            return
        self.now = max(self.now, self._sleepers[0][0])
        while self._sleepers and self._sleepers[0][0] <= self.now:
            heapq.heappop(self._sleepers)[2].set_result(None)
        if self._sleepers:
            self._schedule()

    def limiter(self, **kwargs: Any) -> RateLimiter:
        return RateLimiter(clock=self.clock, sleep=self.sleep, **kwargs)
