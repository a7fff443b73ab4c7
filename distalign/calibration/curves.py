"""Minimal supervision (Kambhatla et al. 2025): how many human distributions does a calibrator need?

The split is fixed once (80/10/10 by question); for each training size n, 10 seeded random subsets of n
training distributions are drawn from the train split, a calibrator is selected on the fixed dev split,
and scored on the fixed test split, so the curves differ only in how much supervision they had.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from distalign.calibration.frame import padded, question_keys, scores
from distalign.calibration.regression import CANDIDATES, DistributionRegressor, option_mse, split_questions
from distalign.errors import InputError

SIZES: tuple[int, ...] = (1, 5, 10, 50, 100, 200, 500, 1000, 1200)


def capped_sizes(sizes: Sequence[int], available: int) -> list[int]:
    """The sizes that exist, plus everything available when a requested size exceeds it."""
    out = sorted({int(n) for n in sizes if 1 <= n <= available})
    if available and any(n > available for n in sizes) and available not in out:
        out.append(available)
    return out


def learning_curve(
    items: pd.DataFrame,
    sizes: Sequence[int] = SIZES,
    repeats: int = 10,
    seed: int = 0,
    candidates: Sequence[str] = CANDIDATES,
    features: str = "plain",
) -> pd.DataFrame:
    """One row per training size: test option MSE, alignment and TV (mean and std over repeats), with the
    uncalibrated test scores for reference. ``items`` is one cell's items table."""
    if repeats < 1:
        raise InputError(f"repeats must be at least 1, got {repeats}", where="repeats")
    data = padded(items.reset_index(drop=True))
    split = split_questions(question_keys(items), seed)
    pool = np.flatnonzero(data.trainable & (split == "train"))
    dev, test = data.trainable & (split == "dev"), np.flatnonzero(data.has_pred & (split == "test"))
    if pool.size == 0 or test.size == 0:
        raise InputError("no parsed training or test rows for a learning curve", where="items")
    tdata = data.take(test)
    raw_tv, raw_alignment = scores(tdata.pred, tdata)
    rows = []
    for n in capped_sizes(sizes, pool.size):
        runs = []
        for r in range(repeats):
            pick = np.random.default_rng([seed, n, r]).choice(pool, size=n, replace=False)
            model = DistributionRegressor(tuple(candidates), features, seed + r)
            model.fit(data.pred[pick], data.human[pick], data.pred[dev], data.human[dev])
            cal = model.predict_proba(tdata.pred)
            tv, alignment = scores(cal, tdata)
            runs.append((option_mse(cal, tdata.human, tdata.mask), np.nanmean(alignment), np.nanmean(tv)))
        a = np.asarray(runs)
        rows.append(
            {
                "n": n,
                "repeats": repeats,
                **{f"{m}_mean": float(a[:, j].mean()) for j, m in enumerate(("mse", "alignment", "tv"))},
                **{
                    f"{m}_std": float(a[:, j].std(ddof=1)) if repeats > 1 else 0.0
                    for j, m in enumerate(("mse", "alignment", "tv"))
                },
                "raw_mse": option_mse(tdata.pred, tdata.human, tdata.mask),
                "raw_alignment": float(np.nanmean(raw_alignment)),
                "raw_tv": float(np.nanmean(raw_tv)),
                "test_size": int(test.size),
            }
        )
    return pd.DataFrame(rows)
