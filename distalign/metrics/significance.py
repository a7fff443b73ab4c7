"""Paired significance tests across settings, with Bonferroni correction, and a repeated-measures ANOVA
for comparisons of more than two conditions.

The calibration study compares, per setting (model x elicitation x dataset), the per-item scores
before and after calibration on the same items, so the test is paired; many settings are tested at
once, so the p-values are corrected for multiplicity. Where three conditions are compared on the same
items (the supervision paper's Table 4), an omnibus repeated-measures ANOVA comes first and the paired
t-tests follow it.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass

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


@dataclass(frozen=True)
class AnovaResult:
    """A one-way repeated-measures ANOVA: ``F(df_num, df_den)``, its p-value and the subjects it used."""

    f: float
    df_num: float
    df_den: float
    p: float
    n_subjects: int


def repeated_measures_anova(scores: Mapping[str, ArrayLike]) -> AnovaResult:
    """One-way repeated-measures ANOVA across conditions (statsmodels ``AnovaRM``).

    ``scores[c][i]`` is subject ``i``'s score under condition ``c``: the same subjects (e.g. the same
    human distributions) are measured under every condition, so the design is paired. Only subjects
    with a finite score under every condition enter (``AnovaRM`` needs a balanced design). Fewer than two
    conditions or two complete subjects, or no variation left, gives NaN.
    """
    names = list(scores)
    arrays = [np.asarray(scores[n], dtype=float).ravel() for n in names]
    if len({a.size for a in arrays}) > 1:
        sizes = ", ".join(f"{n}: {a.size}" for n, a in zip(names, arrays, strict=True))
        raise InputError(f"conditions differ in their number of subjects ({sizes})", where="ANOVA")
    if len(arrays) < 2:
        return AnovaResult(float("nan"), float("nan"), float("nan"), float("nan"), 0)
    wide = np.column_stack(arrays)
    wide = wide[np.isfinite(wide).all(axis=1)]
    n, k = wide.shape
    nan = AnovaResult(float("nan"), float(k - 1), float((k - 1) * (n - 1)), float("nan"), n)
    if n < 2:
        return nan
    resid = wide - wide.mean(axis=1, keepdims=True) - wide.mean(axis=0, keepdims=True) + wide.mean()
    if not np.any(np.abs(resid) > 1e-12 * max(1.0, float(np.abs(wide).max()))):
        return nan  # no residual variation: F is undefined
    from statsmodels.stats.anova import AnovaRM  # its regression machinery: a quarter second, only here

    long = pd.DataFrame(
        {
            "score": wide.ravel(),
            "subject": np.repeat(np.arange(n), k),
            "condition": np.tile(np.arange(k), n),
        }
    )
    table = AnovaRM(long, depvar="score", subject="subject", within=["condition"]).fit().anova_table
    row = table.iloc[0]
    return AnovaResult(
        float(row["F Value"]), float(row["Num DF"]), float(row["Den DF"]), float(row["Pr > F"]), n
    )


def anova_then_paired(
    families: Mapping[str, Mapping[str, ArrayLike]], alpha: float = 0.05
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Several conditions compared on the same subjects, per family (e.g. three elicitation methods on one
    dataset's test distributions): a repeated-measures ANOVA per family first, then paired t-tests between
    every pair of conditions, Bonferroni-corrected across all pairs of all families.

    Returns ``(anova, pairs)``. A pair is ``significant`` only when its corrected p is below ``alpha``
    *and* its family's ANOVA rejected equality at ``alpha`` (the omnibus test gates the post-hoc ones).
    Pairs use the subjects complete in every condition of the family, the same ones the ANOVA used.
    """
    anova_rows, settings, labels = [], {}, []
    for family, scores in families.items():
        res = repeated_measures_anova(scores)
        anova_rows.append(
            {
                "family": family,
                "conditions": " | ".join(scores),
                "n": res.n_subjects,
                "F": res.f,
                "df_num": res.df_num,
                "df_den": res.df_den,
                "p": res.p,
                "anova_significant": bool(np.isfinite(res.p) and res.p < alpha),
            }
        )
        if len(scores) < 2:
            continue
        wide = np.column_stack([np.asarray(v, dtype=float).ravel() for v in scores.values()])
        complete = np.isfinite(wide).all(axis=1)
        names = list(scores)
        for i, j in itertools.combinations(range(len(names)), 2):
            settings[str(len(labels))] = (wide[complete, i], wide[complete, j])
            labels.append((family, names[i], names[j]))
    anova = pd.DataFrame(anova_rows, columns=list(ANOVA_COLUMNS))
    pairs = compare_paired(settings, alpha=alpha)
    if pairs.empty:
        return anova, pd.DataFrame(columns=list(PAIR_COLUMNS))
    pairs = pairs.drop(columns="setting").rename(columns={"mean_before": "mean_a", "mean_after": "mean_b"})
    pairs[["family", "a", "b"]] = pd.DataFrame(labels, index=pairs.index)
    gate = dict(zip(anova["family"], anova["anova_significant"], strict=True))
    pairs["anova_significant"] = pairs["family"].map(gate).astype(bool)
    pairs["significant"] = pairs["significant"].astype(bool) & pairs["anova_significant"]
    return anova, pairs[list(PAIR_COLUMNS)]


ANOVA_COLUMNS: tuple[str, ...] = (
    "family", "conditions", "n", "F", "df_num", "df_den", "p", "anova_significant",
)  # fmt: skip
PAIR_COLUMNS: tuple[str, ...] = (
    "family", "a", "b", "mean_a", "mean_b", "t", "p", "p_bonferroni", "anova_significant", "significant",
)  # fmt: skip
