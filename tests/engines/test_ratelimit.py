"""The per-account limiter: RPM/TPM pacing, Retry-After pauses, AIMD concurrency."""

from __future__ import annotations

import asyncio
import time

import pytest

from distalign.engines.ratelimit import RateLimiter, estimate_tokens


async def _timed_acquires(limiter: RateLimiter, n: int, tokens: int = 0) -> list[float]:
    t0 = time.monotonic()
    out = []
    for _ in range(n):
        await limiter.acquire(tokens)
        out.append(time.monotonic() - t0)
    return out


def test_rpm_bucket_allows_a_burst_then_paces_evenly() -> None:
    limiter = RateLimiter(rpm=1200, burst_s=0.1)  # 20/s, burst of 2
    starts = asyncio.run(_timed_acquires(limiter, 6))
    assert starts[1] < 0.03  # the burst
    assert starts[-1] == pytest.approx(0.2, abs=0.04)  # then one per 50 ms
    assert all(b - a >= 0.04 for a, b in zip(starts[2:], starts[3:], strict=False))


def test_concurrent_acquires_are_paced_too() -> None:
    limiter = RateLimiter(rpm=600, burst_s=0.0)  # 10/s, no burst

    async def main() -> float:
        t0 = time.monotonic()
        await asyncio.gather(*(limiter.acquire() for _ in range(5)))
        return time.monotonic() - t0

    assert asyncio.run(main()) >= 0.39


def test_tpm_bucket_paces_by_tokens_and_passes_oversized_requests() -> None:
    limiter = RateLimiter(tpm=60_000, burst_s=0.0)  # 1000 tokens/s
    starts = asyncio.run(_timed_acquires(limiter, 3, tokens=100))
    assert starts[-1] >= 0.18
    big = RateLimiter(tpm=60_000, burst_s=0.05)  # a 50-token bucket still lets a 200-token call through
    assert asyncio.run(_timed_acquires(big, 1, tokens=200))[0] < 0.05


def test_settle_returns_overestimated_tokens() -> None:
    limiter = RateLimiter(tpm=60_000, burst_s=0.0)

    async def main() -> float:
        await limiter.acquire(500)
        limiter.settle(estimated_tokens=500, actual_tokens=0)
        t0 = time.monotonic()
        await limiter.acquire(1)
        return time.monotonic() - t0

    assert asyncio.run(main()) < 0.1  # without the refund it would wait ~0.5 s


def test_pause_until_holds_every_request() -> None:
    limiter = RateLimiter()

    async def main() -> list[float]:
        t0 = time.monotonic()
        limiter.pause_until(t0 + 0.3)
        return await asyncio.gather(*(_timed_acquires(limiter, 1) for _ in range(3)))

    assert all(s[0] >= 0.29 for s in asyncio.run(main()))
    limiter.pause_until(0.0)  # an earlier deadline never shortens a pause
    assert limiter.paused_until > 0.0


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
