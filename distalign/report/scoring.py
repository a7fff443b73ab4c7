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
from distalign.report.predictions import Resolved, resolve_predictions
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
        k = max([width or 0, *(len(d.probs) for _, d in dists)], default=0)
        human, ordinal = np.zeros((len(dists), k)), np.full((len(dists), k), np.nan)
        mask = np.zeros((len(dists), k), dtype=bool)
        by_item: dict[tuple[str, str], list[int]] = {}
        by_group: dict[tuple[str, str, str], list[tuple[str, int]]] = {}
        for i, (name, d) in enumerate(dists):
            n = len(d.probs)
            human[i, :n], mask[i, :n] = d.probs, True
            ordinal[i, :n] = [np.nan if o is None else o for o in surveys[name].items[d.item_id].ordinal]
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
        keys = self.keys.assign(dist=np.arange(len(self.keys)))
        left = meta[["dataset", "item_id", "attribute", "group"]].assign(pred=np.arange(len(meta)))
        named = left["group"].notna()
        by_item = left[~named].drop(columns=["attribute", "group"]).merge(keys, on=["dataset", "item_id"])
        by_group = left[named].merge(keys, on=["dataset", "item_id", "group"], suffixes=("", "_d"))
        by_group = by_group[by_group["attribute"].isna() | (by_group["attribute"] == by_group["attribute_d"])]
        pairs = pd.concat([by_item[["pred", "dist"]], by_group[["pred", "dist"]]]).sort_values(
            ["pred", "dist"], kind="stable"
        )
        return pairs["pred"].to_numpy(int), pairs["dist"].to_numpy(int)


def score_predictions(
    df: pd.DataFrame,
    surveys: Mapping[str, Survey],
    unparsed: UnparsedPolicy = "uniform",
    source: str | Path | None = None,
) -> pd.DataFrame:
    """One row per (prediction, evaluated group) with its TV and Wasserstein alignment.

    ``df`` follows the predictions schema (``report/PREDICTIONS_FORMAT.md``). An unparsed answer is
    scored as uniform (``uniform``), as a one-hot on the least likely human option (``worst``), or
    left unscored with NaN (``exclude``); it is always kept with status ``unparsed`` so that the
    extraction rate counts it.
    """
    if unparsed not in UNPARSED_POLICIES:
        raise InputError(
            f"unknown policy {unparsed!r} (use {', '.join(UNPARSED_POLICIES)})", where="--unparsed"
        )
    table = SurveyTable.build(surveys)
    resolved = resolve_predictions(df, surveys, source, width=table.human.shape[1])
    return score_resolved(resolved, table, unparsed)


def score_resolved(
    resolved: Resolved, table: SurveyTable, unparsed: UnparsedPolicy = "uniform"
) -> pd.DataFrame:
    """The vectorised part of :func:`score_predictions`, for already validated predictions."""
    pi, di = table.expand(resolved.meta)
    human, mask, ordinal = table.human[di], table.mask[di], table.ordinal[di]
    k = human.shape[1]
    ok = resolved.parsed[pi]
    if unparsed == "worst":
        least = np.argmin(np.where(mask, human, np.inf), axis=1)
        fill = (np.arange(k) == least[:, None]).astype(float)
    else:
        fill = mask / mask.sum(axis=1, keepdims=True)
    pred = np.where(ok[:, None], resolved.probs[pi, :k], fill)
    tv = total_variation(pred, human)
    alignment = wasserstein_alignment(pred, human, ordinal)
    if unparsed == "exclude":
        tv, alignment = np.where(ok, tv, np.nan), np.where(ok, alignment, np.nan)
    out = resolved.meta.iloc[pi].reset_index(drop=True)
    out["attribute"] = table.keys["attribute"].to_numpy()[di]
    out["group"] = table.keys["group"].to_numpy()[di]
    out["tv"], out["alignment"] = tv, alignment
    n_opts = mask.sum(axis=1)
    keep = ok | (unparsed != "exclude")
    out["pred"] = [row[:m] if kept else None for row, m, kept in zip(pred, n_opts, keep, strict=True)]
    out["human"] = [row[:m] for row, m in zip(human, n_opts, strict=True)]
    return out[list(SCORED_COLUMNS)]


__all__ = ["SCORED_COLUMNS", "UNPARSED_POLICIES", "SurveyTable", "score_predictions", "score_resolved"]
