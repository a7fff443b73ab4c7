"""Paired significance tests across settings, with Bonferroni correction.

The calibration study compares, per setting (model x elicitation x dataset), the per-item scores
before and after calibration on the same items, so the test is paired; many settings are tested at
once, so the p-values are corrected for multiplicity.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import stats
from statsmodels.stats.multitest import multipletests

from distalign.errors import InputError


def _paired(a: ArrayLike, b: ArrayLike, where: str) -> tuple[np.ndarray, np.ndarray]:
    """The pairs where both scores exist (an item missing on either side cannot be compared)."""
    x, y = np.asarray(a, dtype=float).ravel(), np.asarray(b, dtype=float).ravel()
    if x.shape != y.shape:
        raise InputError(f"paired samples differ in length: {x.size} vs {y.size}", where=where)
    keep = np.isfinite(x) & np.isfinite(y)
    return x[keep], y[keep]


def paired_ttest(a: ArrayLike, b: ArrayLike) -> tuple[float, float]:
    """Two-sided paired t-test ``(t, p)`` over the pairs with both values finite.

    Fewer than two complete pairs gives ``(nan, nan)``; identical differences give scipy's
    answer for a zero-variance sample (NaN when all differences are 0).
    """
    x, y = _paired(a, b, "paired samples")
    if x.size < 2:
        return float("nan"), float("nan")
    with np.errstate(invalid="ignore", divide="ignore"):
        res = stats.ttest_rel(x, y)
    return float(res.statistic), float(res.pvalue)


def bonferroni(pvalues: ArrayLike, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """``(reject, corrected)``. NaN p-values (tests that could not be run) stay NaN, are never
    rejected, and do not count towards the number of tests."""
    if not 0 < alpha < 1:
        raise InputError(f"alpha must be in (0, 1), got {alpha!r}", where="alpha")
    p = np.asarray(pvalues, dtype=float).ravel()
    reject = np.zeros(p.shape, dtype=bool)
    corrected = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        r, c, _, _ = multipletests(p[ok], alpha=alpha, method="bonferroni")
        reject[ok], corrected[ok] = r, c
    return reject, corrected


def compare_paired(settings: Mapping[str, tuple[ArrayLike, ArrayLike]], alpha: float = 0.05) -> pd.DataFrame:
    """One row per setting: means over complete pairs, paired t-test, Bonferroni across settings."""
    rows = []
    for name, (before, after) in settings.items():
        x, y = _paired(before, after, f"setting {name!r}")
        t, p = paired_ttest(x, y)
        rows.append(
            {
                "setting": name,
                "mean_before": float(x.mean()) if x.size else float("nan"),
                "mean_after": float(y.mean()) if y.size else float("nan"),
                "t": t,
                "p": p,
            }
        )
    columns = ["setting", "mean_before", "mean_after", "t", "p", "p_bonferroni", "significant"]
    if not rows:
        return pd.DataFrame(columns=columns)
    df = pd.DataFrame(rows)
    df["significant"], df["p_bonferroni"] = bonferroni(df["p"].to_numpy(), alpha)
    return df[columns]
