"""Extraction rate per setting (Kambhatla et al. 2025, Table 17): the share of model answers from which a
distribution could be read. Under the paper's protocol an answer that is not a distribution is discarded,
so this table says how much of each setting's evaluation rests on fewer answers than were asked for.

Rates count distinct model answers, not scored rows: a base prompt (no group named) is answered once per
question and scored against every group of that question, and counts once.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from distalign.errors import InputError
from distalign.metrics.extraction import EXTRACTED, STATUSES

SETTING_KEYS: tuple[str, ...] = ("model", "dataset", "method", "steering")


def _answer_ids(items: pd.DataFrame) -> list[str]:
    """Columns that identify one model answer within a setting, by what the table carries: the prompt
    (a sweep's items), the predictions file's row (``distalign calibrate``), else the scored row."""
    for cols in (["item_id", "prompt_hash"], ["row"]):
        if all(c in items.columns for c in cols):
            return cols
    return [c for c in ("item_id", "attribute", "group") if c in items.columns]


def extraction_table(items: pd.DataFrame) -> pd.DataFrame:
    """One row per setting present (model x dataset x method x prompt type): answers asked for,
    answers with a distribution (``ok`` or ``partial``), the rate, and, where the table has ``n_total`` /
    ``n_valid`` (the sampled generations of each answer), the rate over generations too."""
    if "status" not in items.columns:
        raise InputError("missing column 'status'", where="items")
    unknown = sorted(set(items["status"].astype(str)) - STATUSES)
    if unknown:
        raise InputError(f"unknown parse status {unknown[0]!r}", where="items column 'status'")
    keys = [k for k in SETTING_KEYS if k in items.columns]
    answers = items.drop_duplicates(keys + _answer_ids(items))
    answers = answers.assign(_extracted=answers["status"].isin(list(EXTRACTED)))
    rows = []
    for key, frame in answers.groupby(keys, sort=True) if keys else [((), answers)]:
        values = key if isinstance(key, tuple) else (key,)
        row = dict(zip(keys, map(str, values), strict=True))
        row |= {
            "answers": len(frame),
            "extracted": int(frame["_extracted"].sum()),
            "extraction_rate": float(frame["_extracted"].mean()),
        }
        if {"n_total", "n_valid"} <= set(frame.columns):
            total = float(np.nansum(frame["n_total"].to_numpy(float)))
            row["generations"] = int(total)
            row["generation_extraction_rate"] = (
                float(np.nansum(frame["n_valid"].to_numpy(float))) / total if total else float("nan")
            )
        rows.append(row)
    return pd.DataFrame(rows)
