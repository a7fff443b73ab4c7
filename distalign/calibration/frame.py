"""An items table (one row per scored item x group) as padded arrays, and back.

Calibrators work on whole cells at once, so the ragged per-row lists of a sweep's items table (or of a
scored predictions file) are padded once into ``(n, K)`` arrays with a mask of the valid options, the
same layout the metrics use (:mod:`distalign.metrics.arrays`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from distalign.errors import InputError
from distalign.metrics import pad, total_variation, wasserstein_alignment

#: columns every calibrator needs
REQUIRED: tuple[str, ...] = ("dataset", "item_id", "pred_probs", "human_probs")
#: one calibrator per cell: rows are grouped by the columns of this tuple that the table has
CELL_KEYS: tuple[str, ...] = ("model", "method", "dataset", "steering")
#: statuses whose prediction came from the model (an unparsed answer's stand-in is never trained on)
PARSED: frozenset[str] = frozenset({"ok", "partial"})
#: splits a calibrator trained or selected on; every other split is an evaluation row
NOT_EVALUATED: frozenset[str] = frozenset({"train", "dev"})


def _is_missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _as_list(v: Any) -> list[Any] | None:
    if _is_missing(v):
        return None
    return list(v.tolist() if isinstance(v, np.ndarray) else v)


@dataclass(frozen=True)
class Padded:
    """Padded arrays of a table. ``pred`` is NaN in padding and where a row has no prediction (the
    calibrators' input layout); ``ordinal`` is NaN for non-substantive options and padding; ``has_pred``
    marks rows with a prediction, ``trainable`` those whose prediction was parsed."""

    pred: np.ndarray
    human: np.ndarray
    mask: np.ndarray
    ordinal: np.ndarray
    has_pred: np.ndarray
    trainable: np.ndarray

    def __len__(self) -> int:
        return len(self.human)

    def take(self, rows: np.ndarray) -> Padded:
        return Padded(
            *(getattr(self, f)[rows] for f in ("pred", "human", "mask", "ordinal", "has_pred", "trainable"))
        )


def check_columns(items: pd.DataFrame, where: str = "items") -> None:
    missing = [c for c in REQUIRED if c not in items.columns]
    if missing:
        raise InputError(f"missing column(s) {', '.join(missing)}", where=where)


def padded(items: pd.DataFrame) -> Padded:
    """The table's distributions as padded arrays, checked to line up with the human distributions.

    Without an ``ordinal`` column every option is taken as substantive, at positions 1..N.
    """
    check_columns(items)
    human, mask = pad([_as_list(h) or [] for h in items["human_probs"]])
    n, k = human.shape
    pred = np.full((n, k), np.nan)
    has_pred = np.zeros(n, dtype=bool)
    for i, p in enumerate(items["pred_probs"]):
        row = _as_list(p)
        if row is None:
            continue
        if len(row) != mask[i].sum():
            raise InputError(
                f"pred_probs has {len(row)} options, human_probs {int(mask[i].sum())}", where=f"items row {i}"
            )
        pred[i, : len(row)] = np.asarray(row, dtype=float)
        has_pred[i] = True
    pred = np.where(mask, pred, np.nan)
    if "ordinal" in items.columns:
        ordinal, omask = pad(
            [[np.nan if _is_missing(o) else o for o in _as_list(r) or []] for r in items["ordinal"]]
        )
        if ordinal.shape[1] < k or not np.array_equal(omask[:, :k], mask):
            raise InputError(
                "ordinal positions do not line up with the options", where="items column 'ordinal'"
            )
        ordinal = np.where(mask, ordinal[:, :k], np.nan)
    else:
        ordinal = np.where(mask, np.arange(1, k + 1, dtype=float)[None, :], np.nan)
    status = items["status"].astype(str).to_numpy() if "status" in items.columns else np.full(n, "ok")
    trainable = has_pred & np.isin(status, list(PARSED))
    return Padded(pred, human, mask, ordinal, has_pred, trainable)


def log_probs(items: pd.DataFrame, data: Padded) -> np.ndarray:
    """Per-option log-probs (NaN for padding and missing options): the ``logprobs`` column where a row has
    one, else the log of its predicted distribution (softmax is shift-invariant, so scaling log p by 1/tau
    equals scaling the logits)."""
    with np.errstate(divide="ignore"):
        out = np.where(data.mask & data.has_pred[:, None], np.log(np.nan_to_num(data.pred)), np.nan)
    if "logprobs" in items.columns:
        for i, row in enumerate(items["logprobs"]):
            values = _as_list(row)
            if values is None or not data.has_pred[i] or len(values) != data.mask[i].sum():
                continue
            out[i, : len(values)] = [np.nan if _is_missing(v) else float(v) for v in values]
    out[np.isneginf(out)] = np.nan
    return out


def scores(pred: np.ndarray, data: Padded) -> tuple[np.ndarray, np.ndarray]:
    """Per-row TV and alignment ``1 - WD/(N-1)``; NaN for rows without a prediction."""
    ok = data.has_pred & np.all(np.isfinite(np.where(data.mask, pred, 0.0)), axis=1)
    safe = np.where(ok[:, None] & data.mask, pred, np.where(data.mask, data.human, 0.0))
    tv = total_variation(safe, data.human)
    alignment = wasserstein_alignment(safe, data.human, data.ordinal)
    return np.where(ok, tv, np.nan), np.where(ok, alignment, np.nan)


def as_lists(values: np.ndarray, data: Padded, rows: np.ndarray | None = None) -> list[list[float] | None]:
    """Padded rows back to the table's ragged lists (``None`` where a row has no prediction)."""
    rows = np.ones(len(data), dtype=bool) if rows is None else rows
    return [
        [float(x) for x in v[m]] if (ok and r) else None
        for v, m, ok, r in zip(values, data.mask, data.has_pred, rows, strict=True)
    ]


def question_keys(items: pd.DataFrame) -> np.ndarray:
    """One key per question across datasets (item ids are only unique within a dataset)."""
    return items["dataset"].astype(str).to_numpy() + "\x1f" + items["item_id"].astype(str).to_numpy()


def cell_groups(items: pd.DataFrame, keys: Sequence[str] = CELL_KEYS) -> list[tuple[str, np.ndarray]]:
    """``(name, row positions)`` for each cell in the table, the name joining the key values with '/'."""
    cols = [c for c in keys if c in items.columns]
    if not cols:
        return [("all", np.arange(len(items)))]
    labels = items[cols].astype(str).agg("/".join, axis=1).to_numpy()
    return [(str(name), np.flatnonzero(labels == name)) for name in dict.fromkeys(labels)]


def is_evaluated(split: pd.Series | np.ndarray) -> np.ndarray:
    """Rows the calibrator never trained on (test, held-out folds, in-sample protocol, applied)."""
    return ~np.isin(np.asarray(split, dtype=object), list(NOT_EVALUATED))


def split_label(split: pd.Series | np.ndarray, questions: pd.Series | np.ndarray) -> str:
    """Which rows a table's number comes from, for its ``split`` column: the evaluation split's name and
    the share of the cell's questions it holds, e.g. ``test (10%)`` or ``held-out folds (100%)``.

    ``split`` and ``questions`` cover all rows of the cell, the training rows included.
    """
    split = np.asarray(split, dtype=object).astype(str)
    questions = np.asarray(questions, dtype=object)
    ev = is_evaluated(split)
    names = {"held-out folds" if s.startswith("heldout-fold-") else s.replace("_", "-") for s in split[ev]}
    if not names:
        return "none"
    total = len(set(questions.tolist()))
    share = 100.0 * len(set(questions[ev].tolist())) / total if total else float("nan")
    return f"{' + '.join(sorted(names))} ({share:.0f}%)"
