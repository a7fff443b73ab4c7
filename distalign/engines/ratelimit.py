"""Client-side limits for one provider account: requests and tokens per minute, adaptive concurrency.

litellm's Router counts per process and refuses excess calls instead of delaying them, so the limit is
kept here instead: one ``RateLimiter`` per account, living in the one process (a Ray actor in a sweep)
that talks to that account, so the limit holds cluster-wide.

* Requests and tokens are token buckets that allow a short burst (``burst_s`` seconds' worth, at least
  one request) and then pace calls evenly. A caller *reserves* capacity and sleeps until its turn, so
  there is no lock and no busy loop; a request larger than the bucket still passes (it runs into debt).
* Concurrency is additive-increase / multiplicative-decrease: a 429 halves the cap (once per burst of
  429s, not once per failed request), each success adds ``1/cap``.
* ``pause_until`` holds every request of the account until a server's ``Retry-After`` has passed (the
  engine decides whether a Retry-After is honoured at all; one it refuses must not pause anybody).

All times are ``time.monotonic()`` seconds. The limiter belongs to one event loop (the engine's).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from email.utils import parsedate_to_datetime


class _Bucket:
    """A token bucket that hands out reservations: ``reserve`` says when the caller may start."""

    def __init__(self, per_minute: float, burst_s: float, clock: Callable[[], float]) -> None:
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, self.rate * burst_s)
        self.level = self.capacity
        self._clock = clock
        self._last = clock()

    def _refill(self, now: float) -> None:
        self.level = min(self.capacity, self.level + (now - self._last) * self.rate)
        self._last = now

    def reserve(self, cost: float) -> float:
        now = self._clock()
        self._refill(now)
        need = min(cost, self.capacity)
        start = now if self.level >= need else now + (need - self.level) / self.rate
        self.level -= cost
        return start

    def credit(self, amount: float) -> None:
        """Give back (or, negative, take) capacity once the true cost of a call is known."""
        self._refill(self._clock())
        self.level = min(self.capacity, self.level + amount)


def estimate_tokens(texts: Sequence[str], max_completion_tokens: int = 0) -> int:
    """Tokens a request may use, for TPM budgeting before the call: 1 token per 4 characters (the rule
    of thumb of OpenAI's docs) plus 4 per message of chat framing, plus the completion budget.

    Exact counting would need each provider's tokenizer, which may need a download; the estimate is
    corrected with the provider's reported usage after the call (``RateLimiter.record_usage``).
    """
    return sum(math.ceil(len(t) / 4) + 4 for t in texts) + max(0, max_completion_tokens)


def retry_after_seconds(headers: Mapping[str, str] | None, now: float | None = None) -> float | None:
    """Seconds a server asked us to wait: ``retry-after-ms``, or ``Retry-After`` as seconds or an HTTP
    date (RFC 9110 §10.2.3). ``None`` when absent or unreadable; a date in the past gives 0."""
    if not headers:
        return None
    lower = {str(k).lower(): str(v) for k, v in headers.items()}
    if (ms := lower.get("retry-after-ms")) is not None:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = lower.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


class RateLimiter:
    """Requests/min, tokens/min and an adaptive concurrency cap for one provider account."""

    def __init__(
        self,
        rpm: float | None = None,
        tpm: float | None = None,
        *,
        max_concurrency: int = 8,
        min_concurrency: int = 1,
        burst_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """``clock`` and ``sleep`` go together: a test passes a virtual pair to check pacing exactly."""
        for name, value in (("rpm", rpm), ("tpm", tpm)):
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be positive or None, got {value}")
        if not 1 <= min_concurrency <= max_concurrency:
            raise ValueError(
                f"need 1 <= min_concurrency <= max_concurrency, got {min_concurrency}, {max_concurrency}"
            )
        self.rpm, self.tpm = rpm, tpm
        self.max_concurrency, self.min_concurrency = max_concurrency, min_concurrency
        self._clock, self._sleep = clock, sleep
        self._requests = _Bucket(rpm, burst_s, clock) if rpm else None
        self._tokens = _Bucket(tpm, burst_s, clock) if tpm else None
        self._paused_until = 0.0
        self._limit = float(max_concurrency)
        self._in_flight = 0
        self._waiters: list[asyncio.Future[None]] = []
        self._last_decrease = -math.inf

    # --- pacing ------------------------------------------------------------------------------------
    async def acquire(self, tokens: int = 0) -> None:
        """Wait until one more request of ``tokens`` tokens fits the RPM/TPM budget and no pause holds."""
        start = self._clock()
        if self._requests is not None:
            start = max(start, self._requests.reserve(1))
        if self._tokens is not None and tokens > 0:
            start = max(start, self._tokens.reserve(tokens))
        while (delay := max(start, self._paused_until) - self._clock()) > 0:
            await self._sleep(delay)

    def record_usage(self, estimated_tokens: int, actual_tokens: int) -> None:
        """Correct the TPM budget, charged ``estimated_tokens`` before the call, with the usage the
        provider reported: an overestimate is given back, an underestimate taken."""
        if self._tokens is not None:
            self._tokens.credit(estimated_tokens - actual_tokens)

    def pause_until(self, t: float) -> None:
        """Hold every request of this account until monotonic time ``t`` (a server's Retry-After)."""
        self._paused_until = max(self._paused_until, t)

    @property
    def paused_until(self) -> float:
        return self._paused_until

    # --- adaptive concurrency ------------------------------------------------------------------------
    @property
    def concurrency(self) -> int:
        """The current cap on requests in flight."""
        return max(self.min_concurrency, int(self._limit))

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[float]:
        """Hold one of the ``concurrency`` slots; yields the monotonic time the slot was granted."""
        while self._in_flight >= self.concurrency:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
        self._in_flight += 1
        try:
            yield self._clock()
        finally:
            self._in_flight -= 1
            self._wake()

    def on_success(self) -> None:
        """Additive increase: one more slot after ``concurrency`` successes in a row."""
        before = self.concurrency
        self._limit = min(float(self.max_concurrency), self._limit + 1.0 / self._limit)
        if self.concurrency > before:
            self._wake()

    def on_rate_limited(self, started_at: float) -> None:
        """Multiplicative decrease, once for all requests that were already in flight at the last cut."""
        if started_at > self._last_decrease:
            self._limit = max(float(self.min_concurrency), self._limit / 2.0)
            self._last_decrease = self._clock()

    def _wake(self) -> None:
        free = self.concurrency - self._in_flight
        for waiter in [w for w in self._waiters if not w.done()][: max(0, free)]:
            waiter.set_result(None)

    def __repr__(self) -> str:
        return (
            f"RateLimiter(rpm={self.rpm}, tpm={self.tpm}, concurrency={self.concurrency}/"
            f"{self.max_concurrency}, in_flight={self._in_flight})"
        )
