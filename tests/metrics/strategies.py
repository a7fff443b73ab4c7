"""Hypothesis strategies for padded batches of distributions.

Normalisation is done here, independently of the code under test."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

# Probabilities with many exact zeros, so zero handling is exercised on most examples. No subnormal
# floats: scipy's reference divergences overflow on them (JS([1, 0], [1, 5e-324]) comes out inf).
WEIGHTS = st.one_of(st.just(0.0), st.floats(0.0, 1.0, allow_subnormal=False), st.floats(1e-9, 1e-6))


def normalise(w: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Rows of ``w`` restricted to ``mask`` and scaled to 1; a zero row puts all mass on its first option."""
    w = np.where(mask, w, 0.0)
    total = w.sum(axis=-1, keepdims=True)
    first = (np.cumsum(mask, axis=-1) == 1) & mask
    return np.where(total > 0, w / np.where(total > 0, total, 1.0), first.astype(float))


@st.composite
def padded_batch(draw: st.DrawFn, n_dists: int = 2, max_rows: int = 5, max_k: int = 7):
    """``(mask, d_1, ..., d_n)``: a mask with at least one valid option per row and distributions on it."""
    n = draw(st.integers(1, max_rows))
    k = draw(st.integers(1, max_k))
    lengths = draw(arrays(np.int64, n, elements=st.integers(1, k)))
    mask = np.arange(k)[None, :] < lengths[:, None]
    dists = [normalise(draw(arrays(np.float64, (n, k), elements=WEIGHTS)), mask) for _ in range(n_dists)]
    return (mask, *dists)
