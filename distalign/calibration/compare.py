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


#: steering suffixes of the supervision paper's prompt variations (Table 16) -> the triple's middle column
VARIANTS: dict[str, str] = {"_cot": "CoT", "_few_shot": "few-shot"}
TRIPLE_KEYS: tuple[str, ...] = ("calibration", "model", "dataset", "method", "steering")


def triple_comparison(
    items: pd.DataFrame, metric: str = "alignment", alpha: float = 0.05
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(anova, pairs)`` for each triple of Kambhatla et al.'s Tables 2 and 4: for one elicitation method
    and prompt type, the original prompt, its CoT or few-shot variant (steering ``<steering>_cot`` /
    ``<steering>_few_shot``) and the original calibrated, on the original's evaluation rows.

    Each triple gets its own repeated-measures ANOVA and its own three paired t-tests, Bonferroni-corrected
    within the triple (x3); a pair counts as ``significant`` only where that triple's ANOVA rejected.
    The variant's raw score of a distribution is matched on (item, attribute, group); distributions that
    lack any of the three scores are left out of that triple.
    """
    needed = ["method", "steering", "split", "item_id", metric, f"calibrated_{metric}"]
    missing = [c for c in needed if c not in items.columns]
    if missing:
        raise InputError(f"missing column(s) {', '.join(missing)}", where="calibrated items")
    keys = [k for k in TRIPLE_KEYS if k in items.columns]
    subject = [k for k in SUBJECT_KEYS if k in items.columns]
    by_cell = dict(iter(items.groupby(keys, sort=True, dropna=False)))
    anovas, pairs = [], []
    for key, frame in by_cell.items():
        ident = dict(zip(keys, key, strict=True))
        for suffix, label in VARIANTS.items():
            variant_key = tuple(ident[k] + suffix if k == "steering" else ident[k] for k in keys)
            variant = by_cell.get(variant_key)
            if variant is None:
                continue
            ev = frame[is_evaluated(frame["split"])]
            own = ev.groupby(subject, dropna=False)[[metric, f"calibrated_{metric}"]].mean()
            other = variant.groupby(subject, dropna=False)[metric].mean().rename("variant")
            wide = own.join(other, how="left")
            scores = {
                "original": wide[metric].to_numpy(float),
                label: wide["variant"].to_numpy(float),
                "calibrated": wide[f"calibrated_{metric}"].to_numpy(float),
            }
            a, p = anova_then_paired({"triple": scores}, alpha=alpha)
            head = {**{k: str(v) for k, v in ident.items()}, "variant": label}
            anovas.append(a.drop(columns="family").assign(**head))
            pairs.append(p.drop(columns="family").assign(**head))
    cols = [*keys, "variant"]
    if not anovas:
        return pd.DataFrame(columns=cols), pd.DataFrame(columns=cols)
    anova, pair = pd.concat(anovas, ignore_index=True), pd.concat(pairs, ignore_index=True)
    return anova[cols + [c for c in anova.columns if c not in cols]], pair[
        cols + [c for c in pair.columns if c not in cols]
    ]
