"""Percentile-bootstrap intervals for mean scores, per pool and for the mean of pool means.

The benchmark reports each dataset's mean TV and a "three" aggregate (the mean of the dataset
means) with 95% intervals from 1000 resamples. The aggregate's interval must come from the *same*
resamples as the per-dataset ones (resample every pool, recompute the mean of means), not from
combining the per-pool intervals.

Reproducibility contract: resampling uses common random numbers (a paired bootstrap). The row indices of
a pool's resamples come from numpy's ``Generator`` seeded with (seed, the pool's name, its size) and
depend on nothing else: not on the other pools of the call, their order, or how the resamples are cut
into chunks (the indices are drawn resample by resample from one stream, so any cut gives the same
sequence). The same seed therefore gives the same intervals, and pools of the same name and size - one
dataset's scores for different models, methods or steering modes - are resampled with the same row
indices, so a comparison between them is sharper when their rows are in the same order (as a sweep
writes them). Each pool's interval is still an ordinary percentile bootstrap of its own mean. Pools
sharing their indices also share the work: each chunk of indices becomes a row-count matrix, and every
pool's resampled sums are one matrix product with it.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from distalign.errors import InputError

#: index draws per chunk: keeps the working arrays small (a few MB) however large the pool.
CHUNK_DRAWS = 2**18


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


def _generator(seed: int, name: str, n: int) -> np.random.Generator:
    """The resampling stream of pools named ``name`` of size ``n`` (see the module docstring)."""
    return np.random.default_rng([seed, zlib.crc32(name.encode()), n])


def _resampled_sums(pools: Sequence[np.ndarray], n_resamples: int, seed: int, name: str) -> np.ndarray:
    """Sums ``(len(pools), n_resamples)`` of resamples of equal-size pools sharing one name."""
    n = pools[0].size
    rng = _generator(seed, name, n)
    stack = np.column_stack(pools)
    out = np.empty((len(pools), n_resamples))
    rows = max(1, CHUNK_DRAWS // n)
    for start in range(0, n_resamples, rows):
        r = min(rows, n_resamples - start)
        idx = rng.integers(0, n, size=(r, n), dtype=np.int64)
        idx += np.arange(r, dtype=np.int64)[:, None] * n  # resample j counts in row j
        counts = np.bincount(idx.ravel(), minlength=r * n).reshape(r, n)
        out[:, start : start + r] = (counts @ stack).T
    return out


def resample_means(pools: Sequence[tuple[str, np.ndarray]], n_resamples: int, seed: int) -> list[np.ndarray]:
    """The ``n_resamples`` resampled means of each (name, values) pool, with common random numbers:
    pools of equal name and size share their resamples (see the module docstring)."""
    groups: dict[tuple[str, int], list[int]] = {}
    for i, (name, values) in enumerate(pools):
        groups.setdefault((name, values.size), []).append(i)
    out: list[np.ndarray] = [np.empty(0)] * len(pools)
    for (name, n), members in groups.items():
        sums = _resampled_sums([pools[i][1] for i in members], n_resamples, seed, name)
        for j, i in enumerate(members):
            out[i] = sums[j] / n
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
    (resampled,) = resample_means([("", a)], n_resamples, seed)
    return _interval(a.mean(), resampled, a.size, level)


def _checked_pools(pools: Mapping[str, ArrayLike], aggregate: str | None) -> dict[str, np.ndarray]:
    if not pools:
        raise InputError("no pools to bootstrap", where="pools")
    if aggregate is not None and aggregate in pools:
        raise InputError(f"aggregate key {aggregate!r} collides with a pool name", where="aggregate")
    out = {}
    for name, values in pools.items():
        a = _values(values, f"pool {name!r}")
        if a.size == 0:
            raise InputError("empty pool", where=f"pool {name!r}")
        out[name] = a
    return out


def pooled_bootstraps(
    requests: Sequence[tuple[Mapping[str, ArrayLike], str | None]],
    n_resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> list[dict[str, Interval]]:
    """:func:`pooled_bootstrap` for many (pools, aggregate) requests at once. Each result is the single
    call's (the same resamples; sums may differ in the last bits), but pools of equal name and size
    across requests are resampled together, which is much cheaper than one call per request."""
    _check(n_resamples, level)
    checked = [(_checked_pools(pools, aggregate), aggregate) for pools, aggregate in requests]
    flat = [(str(name), a) for pools, _ in checked for name, a in pools.items()]
    resampled = iter(resample_means(flat, n_resamples, seed))
    results = []
    for pools, aggregate in checked:
        out: dict[str, Interval] = {}
        means, draws = [], []
        for name, a in pools.items():
            r = next(resampled)
            out[name] = _interval(a.mean(), r, a.size, level)
            means.append(a.mean())
            draws.append(r)
        if aggregate is not None:
            total = sum(i.n for i in out.values())
            out[aggregate] = _interval(np.mean(means), np.mean(draws, axis=0), total, level)
        results.append(out)
    return results


def pooled_bootstrap(
    pools: Mapping[str, ArrayLike],
    n_resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    aggregate: str | None = "three",
) -> dict[str, Interval]:
    """Per pool, the mean and its interval; under ``aggregate``, the mean of the pool means.

    Each pool (e.g. one dataset's per-(item, group) scores, pooled over the steering modes being
    aggregated) is resampled with replacement; the aggregate's resampled value is the mean of the
    pools' resampled means, so both come from the same draws. A pool's resamples depend only on the
    seed, its name and its size (common random numbers, see the module docstring). ``aggregate=None``
    skips the aggregate. An empty pool raises, since the mean of means would silently change meaning
    without it.
    """
    return pooled_bootstraps([(pools, aggregate)], n_resamples, seed, level)[0]
