"""Distances between predicted and human answer distributions.

Every function reduces over the last axis, so it takes one distribution (1-D) or a padded batch
``(n, K)`` (see :mod:`distalign.metrics.arrays`) and returns one value per row. Inputs are taken as
distributions (non-negative, summing to 1 over their valid options); they are not rescaled here.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from distalign.errors import InputError
from distalign.metrics.arrays import as_array, renormalise, same_shape


def _pair(p: ArrayLike, q: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    a, b = as_array(p, "p"), as_array(q, "q")
    same_shape(a, b)
    if a.ndim == 0:
        raise InputError("a distribution needs at least one option", where="p")
    return a, b


def total_variation(p: ArrayLike, q: ArrayLike) -> np.ndarray:
    """Half the L1 distance: the largest difference in probability the two assign to any event."""
    a, b = _pair(p, q)
    return 0.5 * np.abs(a - b).sum(axis=-1)


def _kl_terms(p: np.ndarray, log_q: np.ndarray) -> np.ndarray:
    """``p * log(p / q)`` with the convention ``0 log 0 = 0`` (zeros of p contribute nothing)."""
    pos = p > 0
    log_p = np.log(np.where(pos, p, 1.0))
    return np.where(pos, p * (log_p - log_q), 0.0)


def kl_divergence(p: ArrayLike, q: ArrayLike, eps: float = 1e-12) -> np.ndarray:
    """KL(p || q) in nats.

    KL is infinite where q = 0 but p > 0 (a model that rules out an answer humans gave). To keep
    means over many items finite, q is floored at ``eps`` in the logarithm, so such an option adds
    ``p * (log p - log eps)`` (about ``27.6 * p`` for the default). Tiny negative results from
    rounding are clipped to 0.
    """
    a, b = _pair(p, q)
    if not eps > 0:
        raise InputError(f"eps must be positive, got {eps}", where="eps")
    return np.maximum(_kl_terms(a, np.log(np.maximum(b, eps))).sum(axis=-1), 0.0)


def js_divergence(p: ArrayLike, q: ArrayLike, base: float = 2) -> np.ndarray:
    """Jensen-Shannon divergence; symmetric, always finite, and within [0, 1] in base 2.

    The mixture is positive wherever p or q is, so no smoothing is needed. This is the square of
    ``scipy.spatial.distance.jensenshannon`` (which returns the JS *distance*).
    """
    a, b = _pair(p, q)
    if not (base > 0 and base != 1):
        raise InputError(f"log base must be positive and not 1, got {base}", where="base")
    m = 0.5 * (a + b)
    log_m = np.log(np.where(m > 0, m, 1.0))
    js = 0.5 * (_kl_terms(a, log_m).sum(axis=-1) + _kl_terms(b, log_m).sum(axis=-1)) / np.log(base)
    return np.clip(js, 0.0, np.log(2) / np.log(base))


def wasserstein_alignment(p: ArrayLike, q: ArrayLike, ordinal: ArrayLike) -> np.ndarray:
    """Opinion alignment of Santurkar et al. (2023): ``1 - WD(p, q) / (N - 1)``.

    ``ordinal`` holds each option's ordinal position, NaN for non-substantive options ("Refused")
    and padding. p and q are restricted to the substantive options and renormalised; a row with no
    substantive mass in p (or q) is taken as uniform over its substantive options. WD is the 1-D
    Wasserstein distance between the two distributions placed at the ordinal positions, and N - 1 is
    the row's ordinal range (max - min), so the result lies in [0, 1]. A row with a single substantive
    option scores 1 (both sides collapse to the same point); a row with none scores NaN.
    """
    a, b = _pair(p, q)
    try:
        pos = np.broadcast_to(np.asarray(ordinal, dtype=float), a.shape)
    except (TypeError, ValueError) as exc:
        raise InputError(f"ordinal positions do not fit the distributions: {exc}", where="ordinal") from None
    if np.any(np.isinf(pos)):
        raise InputError("ordinal positions must be finite (NaN marks non-substantive)", where="ordinal")
    substantive = ~np.isnan(pos)
    a, b = renormalise(a, substantive), renormalise(b, substantive)

    order = np.argsort(pos, axis=-1, kind="stable")  # NaN sort last
    x = np.take_along_axis(pos, order, axis=-1)
    cdf_gap = np.cumsum(np.take_along_axis(a - b, order, axis=-1), axis=-1)
    steps = np.diff(x, axis=-1)
    steps = np.where(np.isnan(steps), 0.0, steps)
    wd = (np.abs(cdf_gap[..., :-1]) * steps).sum(axis=-1)

    span = np.where(substantive, pos, -np.inf).max(axis=-1) - np.where(substantive, pos, np.inf).min(axis=-1)
    has_any = substantive.any(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(span > 0, wd / np.where(span > 0, span, 1.0), 0.0)
    alignment = np.clip(1.0 - ratio, 0.0, 1.0)
    return np.where(has_any, alignment, np.nan)
