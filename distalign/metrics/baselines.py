"""Reference predictions every model is compared against (Meister et al. 2024, Table 1a).

All functions take padded human distributions ``(human, mask)`` of shape ``(n, K)``. *Uniform*
and *majority* are predictions to be scored with TV like a model's; the *discretization* baseline
is the TV a perfect sampler would still incur from drawing only ``n_samples`` answers.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

from distalign.errors import InputError
from distalign.metrics.arrays import as_array, as_mask, renormalise

_NEGLIGIBLE = 1e-250


def _human(human: ArrayLike, mask: ArrayLike | None) -> tuple[np.ndarray, np.ndarray]:
    h = as_array(human, "human")
    if h.ndim == 0:
        raise InputError("a distribution needs at least one option", where="human")
    m = as_mask(mask, h.shape)
    if not m.any(axis=-1).all():
        raise InputError("a row has no valid option", where="mask")
    return np.where(m, h, 0.0), m


def _check_samples(n_samples: int) -> None:
    if not (isinstance(n_samples, int | np.integer) and n_samples >= 1):
        raise InputError(f"n_samples must be a positive integer, got {n_samples!r}", where="n_samples")


def uniform_prediction(mask: ArrayLike) -> np.ndarray:
    """Uniform over every valid option, non-substantive ones ("Refused") included: the benchmark
    shows them to the model, so a know-nothing model spreads over them too."""
    m = np.asarray(mask)
    if m.dtype != bool:
        raise InputError(f"expected a boolean mask, got dtype {m.dtype}", where="mask")
    if m.ndim == 0 or not m.any(axis=-1).all():
        raise InputError("a row has no valid option", where="mask")
    return m / m.sum(axis=-1, keepdims=True)


def majority_prediction(human: ArrayLike, mask: ArrayLike | None = None) -> np.ndarray:
    """One-hot on the most likely human option (ties: the first listed)."""
    h, m = _human(human, mask)
    top = np.argmax(np.where(m, h, -np.inf), axis=-1)
    return (np.arange(h.shape[-1]) == top[..., None]).astype(float)


def expected_sampling_tv(human: ArrayLike, mask: ArrayLike | None = None, n_samples: int = 30) -> np.ndarray:
    """Exact expected TV between p and the empirical distribution of ``n_samples`` draws from p.

    By linearity, ``E[TV] = 0.5 * sum_i E|X_i / n - p_i|`` with marginal ``X_i ~ Binomial(n, p_i)``,
    so the expectation is a sum over ``n + 1`` binomial outcomes per option, with no simulation.
    Padded and zero-probability options contribute nothing (X_i = 0 = n p_i).
    """
    _check_samples(n_samples)
    h, m = _human(human, mask)
    # Subnormal probabilities overflow scipy's incomplete beta; their exact contribution (about 2p) is
    # far below float precision, so they count as 0.
    p = renormalise(h, m)
    p = np.where(p < _NEGLIGIBLE, 0.0, p)
    k = np.arange(n_samples + 1)
    pmf = stats.binom.pmf(k, n_samples, p[..., None])  # (..., K, n + 1)
    mad = (pmf * np.abs(k / n_samples - p[..., None])).sum(axis=-1)
    return 0.5 * mad.sum(axis=-1)


def sampled_tv(
    human: ArrayLike,
    mask: ArrayLike | None = None,
    n_samples: int = 30,
    n_draws: int = 1000,
    seed: int = 0,
) -> np.ndarray:
    """Monte-Carlo estimate of :func:`expected_sampling_tv` (how the paper simulated it), per row."""
    _check_samples(n_samples)
    _check_samples(n_draws)
    h, m = _human(human, mask)
    p = renormalise(h, m)
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(n_samples, p, size=(n_draws, *p.shape[:-1]))  # (n_draws, ..., K)
    return (0.5 * np.abs(counts / n_samples - p).sum(axis=-1)).mean(axis=0)
