"""Comparing elicitation methods (Kambhatla et al. 2025, Table 4): where three or more methods are scored
on the same distributions, a one-way repeated-measures ANOVA across the methods comes first, then paired
t-tests between every two methods, Bonferroni-corrected.

The design is paired: every method of a (model, dataset, prompt type) is scored on the same human
distributions (question x group) of the same test split, so a distribution is a subject measured under
each method, and the ANOVA is the repeated-measures one (statsmodels ``AnovaRM``). Only distributions
scored under every method of the family enter it and its t-tests.
"""

from __future__ import annotations

import pandas as pd

from distalign.calibration.frame import is_evaluated
from distalign.errors import InputError
from distalign.metrics.significance import anova_then_paired

FAMILY_KEYS: tuple[str, ...] = ("calibration", "model", "dataset", "steering")
SUBJECT_KEYS: tuple[str, ...] = ("item_id", "attribute", "group")
STAGES: dict[str, str] = {"raw": "{metric}", "calibrated": "calibrated_{metric}"}


def method_comparison(
    items: pd.DataFrame, metric: str = "alignment", alpha: float = 0.05, min_methods: int = 3
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(anova, pairs)`` over the families (calibration x model x dataset x prompt type) x stage (raw,
    calibrated) with at least ``min_methods`` methods, on the evaluation rows (e.g. the test split).

    ``pairs`` are Bonferroni-corrected across every pair of the table and count as ``significant`` only
    where their family's ANOVA rejected equal means.
    """
    needed = ["method", "split", *SUBJECT_KEYS[:1], metric]
    missing = [c for c in needed if c not in items.columns]
    if missing:
        raise InputError(f"missing column(s) {', '.join(missing)}", where="calibrated items")
    ev = items[is_evaluated(items["split"])]
    keys = [k for k in FAMILY_KEYS if k in ev.columns]
    subject = [k for k in SUBJECT_KEYS if k in ev.columns]
    families: dict[str, dict[str, pd.Series]] = {}
    for key, frame in ev.groupby(keys, sort=True) if keys else [((), ev)]:
        values = key if isinstance(key, tuple) else (key,)
        if frame["method"].nunique() < min_methods:
            continue
        for stage, column in STAGES.items():
            column = column.format(metric=metric)
            if column not in frame.columns:
                continue
            wide = frame.groupby([*subject, "method"], dropna=False)[column].mean().unstack("method")
            name = "\x1f".join([*map(str, values), stage])
            families[name] = {str(m): wide[m].to_numpy(float) for m in wide.columns}
    anova, pairs = anova_then_paired(families, alpha=alpha)
    return _labelled(anova, keys), _labelled(pairs, keys)


def _labelled(table: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """The family name split back into its columns (and ``stage``)."""
    cols = [*keys, "stage"]
    if table.empty:
        return pd.DataFrame(columns=[*cols, *table.columns.drop("family")])
    parts = table["family"].str.split("\x1f", expand=True)
    parts.columns = cols
    return pd.concat([parts, table.drop(columns="family")], axis=1)
