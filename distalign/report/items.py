"""The tables a report reads, brought to one shape.

A report starts from a sweep's items tables (``records.results.ITEM_COLUMNS``; calibrated cells add
``calibration``, ``calibrated_probs``, ``calibrated_tv``, ``calibrated_alignment`` and ``split``) or from a
scored predictions file (``scoring.score.SCORED_COLUMNS``: ``pred``/``human`` instead of
``pred_probs``/``human_probs``, and a ``row`` per prediction). :func:`combine` turns any mix of them into
one items table, and :func:`board` into the leaderboard's input, with one id per model prediction so that a
no-steering answer scored against six groups counts once in the extraction rate.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from distalign.calibration.report import leaderboard_items
from distalign.errors import InputError

#: what the leaderboard needs of every row
NEEDED: tuple[str, ...] = ("model", "method", "steering", "dataset", "item_id", "status", "tv")
#: a prediction is identified by these (plus the source's own ``row`` when it has one)
PREDICTION_KEYS: tuple[str, ...] = ("model", "method", "steering", "dataset", "item_id", "prompt_hash")
CELL_KEYS: list[str] = ["model", "method", "steering", "dataset"]
#: the splits a calibrated row is evaluated on (the rest trained or selected the calibrator)
EVAL_SPLITS: tuple[str, ...] = ("test", "in_sample", "applied")
_SOURCE = "_source"


def as_items(frame: pd.DataFrame, where: str = "items") -> pd.DataFrame:
    """A scored predictions table renamed to the items layout; an items table unchanged."""
    renames = {a: b for a, b in (("pred", "pred_probs"), ("human", "human_probs")) if b not in frame}
    out = frame.rename(columns=renames)
    missing = [c for c in NEEDED if c not in out.columns]
    if missing:
        raise InputError(f"missing column(s) {', '.join(missing)}", where=where)
    return out


def combine(frames: Iterable[pd.DataFrame]) -> pd.DataFrame:
    """One items table from several sources; each keeps its own prediction ids (``row``), made distinct
    across sources."""
    parts = [as_items(f, where=f"items table {i + 1}").assign(**{_SOURCE: i}) for i, f in enumerate(frames)]
    parts = [p for p in parts if len(p)]
    if not parts:
        return pd.DataFrame(columns=[*NEEDED, "pred_probs", "human_probs"])
    out = pd.concat(parts, ignore_index=True)
    keys = [c for c in (*PREDICTION_KEYS, "row", _SOURCE) if c in out.columns]
    out["row"] = pd.MultiIndex.from_frame(out[keys].astype(str)).factorize()[0]
    return out.drop(columns=_SOURCE)


def calibration_names(items: pd.DataFrame) -> pd.Series:
    """Each row's calibration (``none`` for rows of uncalibrated cells)."""
    if "calibration" in items:
        return items["calibration"].fillna("none").astype(str)
    return pd.Series("none", index=items.index)


def is_calibrated(items: pd.DataFrame) -> bool:
    """Whether the table holds calibrated cells with what the supervision paper's analyses need."""
    needed = {"calibrated_tv", "calibrated_alignment", "alignment", "split"}
    return needed <= set(items.columns) and bool((calibration_names(items) != "none").any())


def evaluated(items: pd.DataFrame) -> np.ndarray:
    """Calibrated rows no calibrator trained on (test, in-sample, applied, held-out folds)."""
    split = items["split"].astype(str)
    return (split.isin(EVAL_SPLITS) | split.str.startswith("heldout")).to_numpy()


def board(items: pd.DataFrame) -> pd.DataFrame:
    """The leaderboard's input (``calibration.report.leaderboard_items``: raw rows once, calibrated rows as
    ``<method>+<calibration>``, a regression cell's raw and calibrated rows on its test split as
    ``<method>@test`` and ``<method>+regression@test``), with one id per model prediction."""
    out = leaderboard_items(items) if len(items) else items
    keys = [c for c in (*PREDICTION_KEYS, "row") if c in out.columns]
    if len(out):
        out = out.assign(row=pd.MultiIndex.from_frame(out[keys].astype(str)).factorize()[0])
    return out


def human_distributions(items: pd.DataFrame) -> dict[str, list[list[float]]]:
    """Each dataset's distinct human distributions (one per item x attribute x group), in first-seen order:
    the baselines of exactly what was scored."""
    if "human_probs" not in items or not len(items):
        return {}
    keys = [c for c in ("dataset", "item_id", "attribute", "group") if c in items.columns]
    first = items.drop_duplicates(keys)
    out: dict[str, list[list[float]]] = {}
    for dataset, probs in zip(first["dataset"].astype(str), first["human_probs"], strict=True):
        if probs is not None and len(probs):
            out.setdefault(dataset, []).append([float(p) for p in probs])
    return out


__all__ = ["as_items", "board", "calibration_names", "combine", "evaluated", "human_distributions"]
