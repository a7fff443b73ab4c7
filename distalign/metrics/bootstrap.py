"""Percentile-bootstrap intervals for mean scores, per pool and for the mean of pool means.

The benchmark reports each dataset's mean TV and a "three" aggregate (the mean of the dataset
means) with 95% intervals from 1000 resamples. The aggregate's interval must come from the *same*
resamples as the per-dataset ones (resample every pool, recompute the mean of means), not from
combining the per-pool intervals.

Resampling uses common random numbers (a paired bootstrap): the with-replacement resamples of a
pool depend only on the seed, the pool's name and its size. Pools of the same name and size - one
dataset's scores for different models, methods or steering modes - are therefore resampled with the
same row indices, so their intervals come from the same resamples and a comparison between them is
sharper when their rows are in the same order (as a sweep writes them). Each pool's interval is still
an ordinary percentile bootstrap of its own mean. Sharing is also what makes many pools cheap: the
random draws are generated once per name (a pool of size ``n`` uses the first ``n`` of each
resample's draws) and the row indices once per name and size, then gathered from every pool of that
size.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from distalign.errors import InputError

#: draws per resampling step: keeps the working buffers in cache and memory bounded for large pools.
CHUNK_DRAWS = 2**17
#: steps of the random stream between the starts of consecutive resamples (far more than any pool).
ROW_STRIDE = 2**64
#: from this many pools of one size on, their sums come from a shared count matrix, not gathers.
MIN_SHARED = 3


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


def _indices(u: np.ndarray, n: int) -> np.ndarray:
    """Row indices in ``[0, n)`` from uniform 32-bit draws: ``(u * n) >> 32``, Lemire's multiply-shift
    (its bias, at most ``n / 2**32`` in relative probability, is far below resampling noise)."""
    if n < 2**31:  # the product fits in a signed 64-bit integer
        idx = u.astype(np.int64)
        idx *= n
        idx >>= 32
        return idx
    return ((u.astype(np.uint64) * np.uint64(n)) >> np.uint64(32)).astype(np.int64)


class _Resampler:
    """Resampled sums of pools of one size ``n`` from uniform draws, with reusable buffers.

    A few pools gather their resampled values; many pools share the resamples' row counts (a
    ``rows x n`` multinomial count matrix, accumulated in place) and get their sums as one matrix
    product, so the per-draw work no longer grows with the number of pools.
    """

    def __init__(self, pools: Sequence[np.ndarray], max_rows: int) -> None:
        self.pools = pools
        n = pools[0].size
        if len(pools) >= MIN_SHARED:
            self.stack = np.column_stack(pools)
            self.counts = np.zeros(max_rows * n)
            self.offsets = np.arange(0, max_rows * n, n, dtype=np.int64)[:, None]

    def sums(self, u: np.ndarray) -> np.ndarray:
        """Sums ``(len(pools), rows)`` of the resamples ``u`` (rows x n uniform draws)."""
        rows, n = u.shape
        idx = _indices(u, n)
        if len(self.pools) < MIN_SHARED:
            return np.stack([np.take(values, idx).sum(axis=1) for values in self.pools])
        idx += self.offsets[:rows]
        counts = self.counts[: rows * n]
        counts[:] = 0
        np.add.at(counts, idx.ravel(), 1.0)
        return (counts.reshape(rows, n) @ self.stack).T


class _RowDraws:
    """Uniform 32-bit draws for resamples 0, 1, ... of one pool name.

    Resample ``b`` starts ``b * ROW_STRIDE`` steps into one PCG64 stream per (seed, name), so its first
    ``n`` draws depend only on the seed, the name, ``b`` and ``n``: not on the widest pool of the name
    or on other names.
    """

    def __init__(self, seed: int, name: str) -> None:
        self._stream = np.random.PCG64(np.random.SeedSequence([seed, zlib.crc32(name.encode())]))

    def next_row(self, width: int) -> np.ndarray:
        raw = -(-width // 2)  # each raw 64-bit draw gives two 32-bit ones
        row = self._stream.random_raw(raw).view(np.uint32)[:width]
        self._stream.advance(ROW_STRIDE - raw)
        return row


def _shared_resample_sums(
    sizes: Mapping[int, Sequence[np.ndarray]], n_resamples: int, seed: int, name: str
) -> dict[int, np.ndarray]:
    """Resampled sums ``(len(pools), n_resamples)`` for each size's pools, all of one name.

    The draw matrix (``n_resamples x max n``) is generated once, a chunk of rows at a time; a pool of
    size ``n`` uses its first ``n`` columns.
    """
    width = max(sizes)
    draws = _RowDraws(seed, name)
    rows = max(1, CHUNK_DRAWS // width)
    u = np.empty((rows, width), dtype=np.uint32)
    resamplers = {n: _Resampler(pools, rows) for n, pools in sizes.items()}
    out = {n: np.empty((len(pools), n_resamples)) for n, pools in sizes.items()}
    for start in range(0, n_resamples, rows):
        r = min(rows, n_resamples - start)
        for i in range(r):
            u[i] = draws.next_row(width)
        for n, resampler in resamplers.items():
            out[n][:, start : start + r] = resampler.sums(u[:r, :n])
    return out


def resample_means(pools: Sequence[tuple[str, np.ndarray]], n_resamples: int, seed: int) -> list[np.ndarray]:
    """The ``n_resamples`` resampled means of each (name, values) pool, with common random numbers:
    pools of equal name and size share their resamples (see the module docstring)."""
    by_name: dict[str, dict[int, list[int]]] = {}
    for i, (name, values) in enumerate(pools):
        by_name.setdefault(name, {}).setdefault(values.size, []).append(i)
    out: list[np.ndarray] = [np.empty(0)] * len(pools)
    for name, sizes in by_name.items():
        sums = _shared_resample_sums(
            {n: [pools[i][1] for i in members] for n, members in sizes.items()}, n_resamples, seed, name
        )
        for n, members in sizes.items():
            for j, i in enumerate(members):
                out[i] = sums[n][j] / n
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
