"""Out-of-domain calibration (Kambhatla et al. 2025): train on the other datasets, evaluate on the held-out
one. Datasets share no question, so every row of the target is unseen; the sources are split 90/10 by
question into train and dev (for model selection)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from distalign.calibration.frame import cell_groups, padded, question_keys, scores
from distalign.calibration.regression import CANDIDATES, DistributionRegressor, option_mse, split_questions
from distalign.errors import InputError

SETTING_KEYS: tuple[str, ...] = ("model", "method", "steering")


def out_of_domain(
    items: pd.DataFrame, seed: int = 0, candidates: Sequence[str] = CANDIDATES, features: str = "plain"
) -> pd.DataFrame:
    """One row per setting (model x method x steering) x target dataset: raw and calibrated option MSE,
    TV and alignment on the target, the calibrator trained on all other datasets of that setting."""
    rows = []
    for setting, idx in cell_groups(items, SETTING_KEYS):
        frame = items.iloc[idx].reset_index(drop=True)
        names = sorted(frame["dataset"].astype(str).unique())
        if len(names) < 2:
            raise InputError(
                f"setting {setting}: out-of-domain needs at least 2 datasets, got {names}", where="items"
            )
        data, ds = padded(frame), frame["dataset"].astype(str).to_numpy()
        for target in names:
            src = np.flatnonzero(ds != target)
            split = np.full(len(frame), "", dtype=object)
            split[src] = split_questions(question_keys(frame.iloc[src]), seed, (0.9, 0.1, 0.0))
            train, dev = data.trainable & (split == "train"), data.trainable & (split == "dev")
            model = DistributionRegressor(tuple(candidates), features, seed)
            model.fit(data.pred[train], data.human[train], data.pred[dev], data.human[dev])
            tgt = data.take(np.flatnonzero((ds == target) & data.has_pred))
            cal = model.predict_proba(tgt.pred)
            (raw_tv, raw_al), (tv, al) = scores(tgt.pred, tgt), scores(cal, tgt)
            rows.append(
                {
                    "setting": setting,
                    "target": target,
                    "sources": "+".join(n for n in names if n != target),
                    "train_size": int(train.sum()),
                    "chosen_regressor": model.chosen_,
                    "test_size": len(tgt),
                    "mse_raw": option_mse(tgt.pred, tgt.human, tgt.mask),
                    "mse_calibrated": option_mse(cal, tgt.human, tgt.mask),
                    "tv_raw": float(np.nanmean(raw_tv)),
                    "tv_calibrated": float(np.nanmean(tv)),
                    "alignment_raw": float(np.nanmean(raw_al)),
                    "alignment_calibrated": float(np.nanmean(al)),
                }
            )
    return pd.DataFrame(rows)
