"""Every human group distribution of some surveys as padded arrays, and which of them each prediction is
scored against (an inner join on dataset, item and group)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from distalign.survey.model import Survey


@dataclass(frozen=True)
class SurveyTable:
    """Every group distribution of some surveys as padded arrays, with its dataset, item and group."""

    human: np.ndarray  # (D, K) probabilities, 0 in padding
    mask: np.ndarray  # (D, K) valid options
    ordinal: np.ndarray  # (D, K) ordinal positions, NaN for non-substantive options and padding
    keys: pd.DataFrame  # dataset, item_id, attribute, group per distribution

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
        keys = pd.DataFrame(
            [(name, d.item_id, d.attribute, d.group) for name, d in dists],
            columns=["dataset", "item_id", "attribute", "group"],
        )
        return cls(human, mask, ordinal, keys)

    def expand(self, meta: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """(prediction index, distribution index) pairs, sorted: each prediction against its group (whose
        attribute agrees, when given), or, with no group, against every group of its item."""
        columns = ["dataset", "item_id", "attribute", "group"]
        left = meta[columns].astype(object).reset_index(drop=True).rename_axis("pi").reset_index()
        right = self.keys.astype(object).rename_axis("di").reset_index()
        named = left["group"].notna()
        whole = left[~named].merge(right, on=["dataset", "item_id"])
        one = left[named].merge(right, on=["dataset", "item_id", "group"], suffixes=("", "_table"))
        one = one[one["attribute"].isna() | (one["attribute"] == one["attribute_table"])]
        pairs = pd.concat([whole[["pi", "di"]], one[["pi", "di"]]]).sort_values(["pi", "di"])
        return pairs["pi"].to_numpy(dtype=np.int64), pairs["di"].to_numpy(dtype=np.int64)


__all__ = ["SurveyTable"]
