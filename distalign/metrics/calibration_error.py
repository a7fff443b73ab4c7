"""Expected calibration error for predicted distributions.

Each valid (row, option) pair is one observation: the model's probability is the "confidence" and
the human probability of the same option is the "outcome". Binning the confidences (equal width on
[0, 1]) and comparing mean confidence to mean outcome per bin says whether the model's 0.3s are,
on average, 0.3s for humans too; this is what a supervised calibrator is meant to fix.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from distalign.errors import InputError
from distalign.metrics.arrays import as_array, as_mask, same_shape


def _binned(
    pred: ArrayLike, true: ArrayLike, mask: ArrayLike | None, n_bins: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Per-bin counts and sums of confidences and outcomes over the valid entries."""
    if not (isinstance(n_bins, int | np.integer) and n_bins >= 1):
        raise InputError(f"n_bins must be a positive integer, got {n_bins!r}", where="n_bins")
    p, t = as_array(pred, "pred"), as_array(true, "true")
    same_shape(p, t, ("pred", "true"))
    if np.any(p > 1) or np.any(t > 1):
        raise InputError("probabilities above 1", where="pred" if np.any(p > 1) else "true")
    m = as_mask(mask, p.shape)
    p, t = p[m], t[m]
    idx = np.minimum((p * n_bins).astype(int), n_bins - 1)  # 1.0 falls in the last bin
    counts = np.bincount(idx, minlength=n_bins)
    sum_pred = np.bincount(idx, weights=p, minlength=n_bins)
    sum_true = np.bincount(idx, weights=t, minlength=n_bins)
    return counts, sum_pred, sum_true, p.size


def expected_calibration_error(
    pred: ArrayLike, true: ArrayLike, mask: ArrayLike | None = None, n_bins: int = 10
) -> float:
    """``sum_b |B_b|/N * |mean(pred in b) - mean(true in b)|``; NaN when there is nothing to score.

    Pass the mask of padded arrays: padded zeros would otherwise count as perfectly calibrated
    observations in the first bin.
    """
    counts, sum_pred, sum_true, total = _binned(pred, true, mask, n_bins)
    if total == 0:
        return float("nan")
    # |B|/N * |S_pred/|B| - S_true/|B|| = |S_pred - S_true| / N
    return float(np.abs(sum_pred - sum_true).sum() / total)


def reliability_curve(
    pred: ArrayLike, true: ArrayLike, mask: ArrayLike | None = None, n_bins: int = 10
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(bin_centers, mean_pred, mean_true, counts)`` for a reliability diagram; empty bins are NaN."""
    counts, sum_pred, sum_true, _ = _binned(pred, true, mask, n_bins)
    centers = (np.arange(n_bins) + 0.5) / n_bins
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_pred = np.where(counts > 0, sum_pred / counts, np.nan)
        mean_true = np.where(counts > 0, sum_true / counts, np.nan)
    return centers, mean_pred, mean_true, counts
