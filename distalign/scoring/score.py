"""Scoring predictions against the human group distributions, vectorised over all (prediction, group)
pairs: predictions and human distributions are padded into 2-D arrays once and every metric runs on
the whole batch (a sweep's cell and a 100,000-row file take the same path).

Used by ``distalign score`` (after reading a file) and by the sweep for each cell (in memory).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from distalign.errors import InputError
from distalign.metrics import total_variation, wasserstein_alignment
from distalign.scoring.predictions import Progress, Resolved, resolve_predictions
from distalign.survey.model import Survey

UnparsedPolicy = Literal["uniform", "exclude", "worst"]
UNPARSED_POLICIES: tuple[str, ...] = ("uniform", "exclude", "worst")
SCORED_COLUMNS: tuple[str, ...] = (
    "row", "model", "method", "steering", "dataset", "item_id", "attribute", "group",
    "status", "detail", "n_total", "n_valid", "tv", "alignment", "pred", "human",
)  # fmt: skip


@dataclass(frozen=True)
class SurveyTable:
    """Every group distribution of some surveys as padded arrays, with lookups by item and group."""

    human: np.ndarray  # (D, K) probabilities, 0 in padding
    mask: np.ndarray  # (D, K) valid options
    ordinal: np.ndarray  # (D, K) ordinal positions, NaN for non-substantive options and padding
    keys: pd.DataFrame  # dataset, item_id, attribute, group per distribution
    by_item: Mapping[tuple[str, str], tuple[int, ...]]
    by_group: Mapping[tuple[str, str, str], tuple[tuple[str, int], ...]]  # -> (attribute, index)

    @classmethod
    def build(cls, surveys: Mapping[str, Survey], width: int | None = None) -> SurveyTable:
        dists = [(name, d) for name, s in surveys.items() for d in s.distributions]
        lengths = np.array([len(d.probs) for _, d in dists], dtype=int)
        k = max([width or 0, *lengths.tolist()], default=0)
        human, ordinal = np.zeros((len(dists), k)), np.full((len(dists), k), np.nan)
        mask = np.zeros((len(dists), k), dtype=bool)
        if dists:  # filled in bulk: row i's first len(probs) entries
            positions = {
                (name, iid): np.array([np.nan if o is None else o for o in item.ordinal], dtype=float)
                for name, s in surveys.items()
                for iid, item in s.items.items()
            }
            rows = np.repeat(np.arange(len(dists)), lengths)
            cols = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
            human[rows, cols] = np.concatenate([d.probs for _, d in dists])
            ordinal[rows, cols] = np.concatenate([positions[(name, d.item_id)] for name, d in dists])
            mask[rows, cols] = True
        by_item: dict[tuple[str, str], list[int]] = {}
        by_group: dict[tuple[str, str, str], list[tuple[str, int]]] = {}
        for i, (name, d) in enumerate(dists):
            by_item.setdefault((name, d.item_id), []).append(i)
            by_group.setdefault((name, d.item_id, d.group), []).append((d.attribute, i))
        keys = pd.DataFrame(
            [(name, d.item_id, d.attribute, d.group) for name, d in dists],
            columns=["dataset", "item_id", "attribute", "group"],
        )
        return cls(
            human,
            mask,
            ordinal,
            keys,
            {key: tuple(v) for key, v in by_item.items()},
            {key: tuple(v) for key, v in by_group.items()},
        )

    def expand(self, meta: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """(prediction index, distribution index) pairs: each prediction against its group, or, with no
        group, against every group of its item (kept in prediction order)."""
        code = {c: self._codes(meta, c) for c in ("dataset", "item_id", "attribute", "group")}
        sizes = {c: len(self.keys[c].unique()) for c in ("dataset", "item_id", "group")}
        item_key = code["dataset"][0] * sizes["item_id"] + code["item_id"][0]
        item_key[(code["dataset"][0] < 0) | (code["item_id"][0] < 0)] = -1
        table_item_key = code["dataset"][1] * sizes["item_id"] + code["item_id"][1]
        named = meta["group"].notna().to_numpy()
        # no group: every distribution of the item
        pi, di = _equal_pairs(item_key[~named], table_item_key)
        pi = np.flatnonzero(~named)[pi]
        # a group (and maybe an attribute): the distributions of that group whose attribute agrees
        group_key = np.where(code["group"][0] < 0, -1, item_key * sizes["group"] + code["group"][0])
        group_key[item_key < 0] = -1
        gi, gd = _equal_pairs(group_key[named], table_item_key * sizes["group"] + code["group"][1])
        gi = np.flatnonzero(named)[gi]
        attribute = code["attribute"][0][gi]
        agree = (attribute == -1) | (attribute == code["attribute"][1][gd])
        pi, di = np.concatenate([pi, gi[agree]]), np.concatenate([di, gd[agree]])
        order = np.lexsort((di, pi))
        return pi[order], di[order]

    def _codes(self, meta: pd.DataFrame, column: str) -> tuple[np.ndarray, np.ndarray]:
        """Integer codes of a key column in ``meta`` and in the table: -1 where missing in ``meta``,
        -2 where ``meta`` holds a value the table lacks."""
        index = pd.Index(self.keys[column].unique())
        codes, uniques = pd.factorize(meta[column])  # distinct values are few: look those up only
        known = index.get_indexer(uniques)
        return np.append(np.where(known < 0, -2, known), -1)[codes], index.get_indexer(self.keys[column])


def _equal_pairs(left: np.ndarray, right: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All (i, j) with ``left[i] == right[j] >= 0``, as in an inner join on integer keys."""
    order = np.argsort(right, kind="stable")
    ranked = right[order]
    lo, hi = np.searchsorted(ranked, left, "left"), np.searchsorted(ranked, left, "right")
    counts = np.where(left >= 0, hi - lo, 0)
    i = np.repeat(np.arange(left.size), counts)
    offset = np.arange(i.size) - np.repeat(np.cumsum(counts) - counts, counts)
    return i, order[np.repeat(lo, counts) + offset]


def score_predictions(
    df: pd.DataFrame,
    surveys: Mapping[str, Survey],
    unparsed: UnparsedPolicy = "uniform",
    source: str | Path | None = None,
    *,
    strict: bool = True,
    unique: bool = False,
    progress: Progress | None = None,
) -> pd.DataFrame:
    """One row per (prediction, evaluated group) with its TV and Wasserstein alignment.

    ``df`` follows the predictions schema (``scoring/PREDICTIONS_FORMAT.md``). An unparsed answer is
    scored as uniform (``uniform``), as a one-hot on the least likely human option (``worst``), or
    left unscored with NaN (``exclude``); it is always kept with status ``unparsed`` so that the
    extraction rate counts it. ``strict``, ``unique`` and ``progress`` are those of
    :func:`~distalign.scoring.predictions.resolve_predictions`; the counts of rows left out are in
    ``attrs["skipped"]`` of the result.
    """
    if unparsed not in UNPARSED_POLICIES:
        raise InputError(
            f"unknown policy {unparsed!r} (use {', '.join(UNPARSED_POLICIES)})", where="--unparsed"
        )
    table = SurveyTable.build(surveys)
    resolved = resolve_predictions(
        df, surveys, source, width=table.human.shape[1], strict=strict, unique=unique, progress=progress
    )
    scored = score_resolved(resolved, table, unparsed)
    scored.attrs["skipped"] = dict(resolved.skipped)
    return scored


def score_resolved(
    resolved: Resolved, table: SurveyTable, unparsed: UnparsedPolicy = "uniform"
) -> pd.DataFrame:
    """The vectorised part of :func:`score_predictions`, for already validated predictions.

    Pairs are scored in blocks of equal option count, so that no metric runs over padding.
    """
    pi, di = table.expand(resolved.meta)
    widths = table.mask.sum(axis=1)
    ok = resolved.parsed[pi]
    tv, alignment = np.empty(len(pi)), np.empty(len(pi))
    pred_rows = np.full(len(pi), None, dtype=object)
    for w in np.unique(widths[di]).tolist():
        rows = np.flatnonzero(widths[di] == w)
        human, ordinal = table.human[di[rows], :w], table.ordinal[di[rows], :w]
        if unparsed == "worst":  # one-hot on the least likely human option
            fill = (np.arange(w) == np.argmin(human, axis=1)[:, None]).astype(float)
        else:
            fill = np.full(w, 1 / w)
        pred = np.where(ok[rows, None], resolved.probs[pi[rows], :w], fill)
        tv[rows] = total_variation(pred, human)
        alignment[rows] = wasserstein_alignment(pred, human, ordinal)
        kept = rows if unparsed != "exclude" else rows[ok[rows]]
        pred_rows[kept] = _row_arrays(pred[ok[rows]] if unparsed == "exclude" else pred)
    if unparsed == "exclude":
        tv[~ok], alignment[~ok] = np.nan, np.nan
    same_rows = len(pi) == len(resolved.meta) and bool((pi == np.arange(len(pi))).all())
    out = resolved.meta.reset_index(drop=True) if same_rows else resolved.meta.iloc[pi].reset_index(drop=True)
    out["attribute"] = table.keys["attribute"].array.take(di)
    out["group"] = table.keys["group"].array.take(di)
    out["tv"], out["alignment"] = tv, alignment
    out["pred"] = pred_rows
    human_rows = np.empty(len(widths), dtype=object)
    for w in np.unique(widths).tolist():
        rows = np.flatnonzero(widths == w)
        human_rows[rows] = _row_arrays(table.human[rows, :w])
    out["human"] = human_rows[di]
    return out[list(SCORED_COLUMNS)]


def _row_arrays(block: np.ndarray) -> np.ndarray:
    """The rows of a 2-D block as a 1-D object array of read-only views (no per-row slicing in Python)."""
    block.flags.writeable = False
    return np.fromiter(block, dtype=object, count=len(block))


__all__ = ["SCORED_COLUMNS", "UNPARSED_POLICIES", "SurveyTable", "score_predictions", "score_resolved"]
