"""Percentile-bootstrap intervals for mean scores, per pool and for the mean of pool means.

The benchmark reports each dataset's mean TV and a "three" aggregate (the mean of the dataset
means) with 95% intervals from 1000 resamples. The aggregate's interval must come from the *same*
resamples as the per-dataset ones (resample every pool, recompute the mean of means), not from
combining the per-pool intervals.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from distalign.errors import InputError

#: bytes of index + gathered-value buffers per resampling chunk; bounds memory for large pools.
CHUNK_BYTES = 128 * 2**20


@dataclass(frozen=True)
class Interval:
    """A mean with its bootstrap interval; ``n`` is the number of values it was computed from."""

    mean: float
    low: float
    high: float
    n: int

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2


def _values(values: ArrayLike, name: str) -> np.ndarray:
    a = np.asarray(values, dtype=float).ravel()
    if not np.all(np.isfinite(a)):
        raise InputError("contains NaN or infinite values; drop or impute them first", where=name)
    return a


def _check(n_resamples: int, level: float) -> None:
    if not (isinstance(n_resamples, int | np.integer) and n_resamples >= 1):
        raise InputError(f"n_resamples must be a positive integer, got {n_resamples!r}", where="n_resamples")
    if not 0 < level < 1:
        raise InputError(f"level must be in (0, 1), got {level!r}", where="level")


def _resample_means(values: np.ndarray, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Means of ``n_resamples`` with-replacement resamples, drawn in chunks of bounded size."""
    n = values.size
    chunk = max(1, CHUNK_BYTES // (16 * n))
    out = np.empty(n_resamples)
    for start in range(0, n_resamples, chunk):
        stop = min(start + chunk, n_resamples)
        idx = rng.integers(0, n, size=(stop - start, n))
        out[start:stop] = values[idx].mean(axis=1)
    return out


def _interval(mean: float, resampled: np.ndarray, n: int, level: float) -> Interval:
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(resampled, [tail, 100 - tail])
    return Interval(mean=float(mean), low=float(low), high=float(high), n=n)


def _nan_interval(n: int = 0) -> Interval:
    return Interval(mean=float("nan"), low=float("nan"), high=float("nan"), n=n)


def bootstrap_mean(
    values: ArrayLike, n_resamples: int = 1000, seed: int = 0, level: float = 0.95
) -> Interval:
    """The sample mean with a percentile-bootstrap interval; an empty input gives a NaN interval."""
    _check(n_resamples, level)
    a = _values(values, "values")
    if a.size == 0:
        return _nan_interval()
    resampled = _resample_means(a, n_resamples, np.random.default_rng(seed))
    return _interval(a.mean(), resampled, a.size, level)


def _pool_rng(seed: int, name: str) -> np.random.Generator:
    """One stream per pool name, so a pool's interval does not depend on which other pools are present."""
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def pooled_bootstrap(
    pools: Mapping[str, ArrayLike],
    n_resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    aggregate: str | None = "three",
) -> dict[str, Interval]:
    """Per pool, the mean and its interval; under ``aggregate``, the mean of the pool means.

    Each pool (e.g. one dataset's per-(item, group) scores, pooled over the steering modes being
    aggregated) is resampled with replacement on its own; the aggregate's resampled value is the
    mean of the pools' resampled means, so both come from the same draws. ``aggregate=None`` skips
    it. An empty pool raises, since the mean of means would silently change meaning without it.
    """
    _check(n_resamples, level)
    if not pools:
        raise InputError("no pools to bootstrap", where="pools")
    if aggregate is not None and aggregate in pools:
        raise InputError(f"aggregate key {aggregate!r} collides with a pool name", where="aggregate")
    out: dict[str, Interval] = {}
    means, resampled = [], []
    for name, values in pools.items():
        a = _values(values, f"pool {name!r}")
        if a.size == 0:
            raise InputError("empty pool", where=f"pool {name!r}")
        r = _resample_means(a, n_resamples, _pool_rng(seed, str(name)))
        out[name] = _interval(a.mean(), r, a.size, level)
        means.append(a.mean())
        resampled.append(r)
    if aggregate is not None:
        total = sum(i.n for i in out.values())
        out[aggregate] = _interval(np.mean(means), np.mean(resampled, axis=0), total, level)
    return out
