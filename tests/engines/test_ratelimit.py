"""The per-account limiter: RPM/TPM pacing, Retry-After pauses, AIMD concurrency."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from distalign.engines.ratelimit import RateLimiter, estimate_tokens
from tests.engines.virtual_time import VirtualTime


async def _starts(limiter: RateLimiter, clock: Callable[[], float], n: int, tokens: int = 0) -> list[float]:
    t0 = clock()
    out = []
    for _ in range(n):
        await limiter.acquire(tokens)
        out.append(clock() - t0)
    return out


def test_rpm_bucket_allows_a_burst_then_paces_evenly() -> None:
    vt = VirtualTime()
    limiter = vt.limiter(rpm=1200, burst_s=0.1)  # 20/s, burst of 2
    starts = asyncio.run(_starts(limiter, vt.clock, 6))
    assert starts == pytest.approx([0.0, 0.0, 0.05, 0.1, 0.15, 0.2])  # the burst, then one per 50 ms


def test_pacing_sleeps_in_real_time() -> None:
    """The same pacing with the real clock and sleep (lower bounds only: a busy machine only adds delay)."""
    limiter = RateLimiter(rpm=1200, burst_s=0.1)
    starts = asyncio.run(_starts(limiter, time.monotonic, 6))
    assert starts[-1] >= 0.19
    assert all(b - a >= 0.04 for a, b in zip(starts[2:], starts[3:], strict=False))


def test_concurrent_acquires_are_paced_too() -> None:
    vt = VirtualTime()
    limiter = vt.limiter(rpm=600, burst_s=0.0)  # 10/s, no burst

    async def main() -> list[float]:
        async def one() -> float:
            await limiter.acquire()
            return vt.now

        return await asyncio.gather(*(one() for _ in range(5)))

    assert sorted(asyncio.run(main())) == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])


def test_tpm_bucket_paces_by_tokens_and_passes_oversized_requests() -> None:
    vt = VirtualTime()
    limiter = vt.limiter(tpm=60_000, burst_s=0.0)  # 1000 tokens/s
    assert asyncio.run(_starts(limiter, vt.clock, 3, tokens=100)) == pytest.approx([0.0, 0.1, 0.2])
    big = vt.limiter(tpm=60_000, burst_s=0.05)  # a 50-token bucket still lets a 200-token call through
    assert asyncio.run(_starts(big, vt.clock, 2, tokens=200)) == pytest.approx([0.0, 0.2])  # then repays


@pytest.mark.parametrize(("refund", "wait"), [(500, 0.0), (0, 0.5)])
def test_record_usage_returns_overestimated_tokens(refund: int, wait: float) -> None:
    """Without the refund the next call waits for the 500 tokens the first one was charged."""
    vt = VirtualTime()
    limiter = vt.limiter(tpm=60_000, burst_s=0.0)

    async def main() -> float:
        await limiter.acquire(500)
        limiter.record_usage(estimated_tokens=500, actual_tokens=500 - refund)
        t0 = vt.now
        await limiter.acquire(1)
        return vt.now - t0

    assert asyncio.run(main()) == pytest.approx(wait, abs=1e-3)


def test_pause_until_holds_every_request() -> None:
    vt = VirtualTime()
    limiter = vt.limiter()

    async def main() -> list[list[float]]:
        limiter.pause_until(0.3)
        return await asyncio.gather(*(_starts(limiter, vt.clock, 1) for _ in range(3)))

    assert [s[0] for s in asyncio.run(main())] == pytest.approx([0.3, 0.3, 0.3])
    limiter.pause_until(0.0)  # an earlier deadline never shortens a pause
    assert limiter.paused_until == 0.3


async def _peak_in_flight(limiter: RateLimiter, tasks: int, hold_s: float = 0.01) -> int:
    peak = 0

    async def one() -> None:
        nonlocal peak
        async with limiter.slot():
            peak = max(peak, limiter.in_flight)
            await asyncio.sleep(hold_s)

    await asyncio.gather(*(one() for _ in range(tasks)))
    return peak


def test_slot_caps_requests_in_flight() -> None:
    assert asyncio.run(_peak_in_flight(RateLimiter(max_concurrency=3), 20)) == 3


def test_aimd_halves_once_per_burst_of_429s_and_grows_back() -> None:
    clock = [100.0]
    limiter = RateLimiter(max_concurrency=8, clock=lambda: clock[0])
    limiter.on_rate_limited(started_at=99.0)
    assert limiter.concurrency == 4
    limiter.on_rate_limited(started_at=99.5)  # was already in flight when the cap was cut
    assert limiter.concurrency == 4
    clock[0] = 101.0
    limiter.on_rate_limited(started_at=100.5)
    assert limiter.concurrency == 2
    for t in (102.0, 103.0, 104.0):
        clock[0] = t
        limiter.on_rate_limited(started_at=t - 0.5)
    assert limiter.concurrency == 1  # never below min_concurrency
    assert asyncio.run(_peak_in_flight(limiter, 5, hold_s=0.0)) == 1
    for _ in range(100):
        limiter.on_success()
    assert limiter.concurrency == 8  # back up, and no further


def test_estimate_tokens_counts_characters_framing_and_completion_budget() -> None:
    assert estimate_tokens(["abcd" * 10], 0) == 10 + 4
    assert estimate_tokens(["a", "bcdef"], 30) == (1 + 4) + (2 + 4) + 30


@pytest.mark.parametrize("kwargs", [{"rpm": 0}, {"tpm": -5}, {"max_concurrency": 0}])
def test_invalid_limits_raise(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        RateLimiter(**kwargs)
