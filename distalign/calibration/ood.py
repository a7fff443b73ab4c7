"""Out-of-domain calibration (Kambhatla et al. 2025, Tables 11-12): train on the other datasets, evaluate
on the held-out one.

Every dataset keeps the 80/10/10 split by question its in-domain calibrator uses (same seed, same
fractions). For a target dataset, the out-of-domain calibrator is fitted on the *train* splits of the
other datasets of the same setting (model x elicitation x prompt type) and selected on their *dev*
splits; the in-domain calibrator on the target's own train and dev splits. Both, and the uncalibrated
distributions, are scored on the same rows: the target's test split.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from distalign.calibration.frame import Padded, cell_groups, padded, question_keys, scores, split_label
from distalign.calibration.regression import CANDIDATES, DistributionRegressor, option_mse
from distalign.calibration.sampling import SPLIT, split_questions
from distalign.errors import InputError

SETTING_KEYS: tuple[str, ...] = ("model", "method", "steering")


def _splits(frame: pd.DataFrame, ds: np.ndarray, seed: int, fractions: Sequence[float]) -> np.ndarray:
    """Each dataset's own split, as its in-domain calibration cell makes it."""
    split = np.empty(len(frame), dtype=object)
    for name in np.unique(ds):
        rows = np.flatnonzero(ds == name)
        split[rows] = split_questions(question_keys(frame.iloc[rows]), seed, fractions)
    return split


def _fit(
    data: Padded, train: np.ndarray, dev: np.ndarray, candidates: Sequence[str], features: str, seed: int
) -> DistributionRegressor | None:
    if not train.any():
        return None
    model = DistributionRegressor(tuple(candidates), features, seed)
    return model.fit(data.pred[train], data.human[train], data.pred[dev], data.human[dev])


def _scored(prefix: str, pred: np.ndarray, tgt: Padded) -> dict[str, float]:
    tv, alignment = scores(pred, tgt)
    return {
        f"alignment_{prefix}": _mean(alignment),
        f"tv_{prefix}": _mean(tv),
        f"mse_{prefix}": option_mse(pred, tgt.human, tgt.mask),
    }


def _mean(x: np.ndarray) -> float:
    x = x[np.isfinite(x)]
    return float(x.mean()) if x.size else float("nan")


def ood_table(
    items: pd.DataFrame,
    seed: int = 0,
    candidates: Sequence[str] = CANDIDATES,
    features: str = "plain",
    fractions: Sequence[float] = SPLIT,
) -> pd.DataFrame:
    """One row per setting (model x method x steering) x target dataset: raw, in-domain and out-of-domain
    calibrated alignment, TV and option MSE on the target's test split.

    ``items`` holds the rows of every dataset (a sweep's items tables concatenated, or a scored
    predictions file), one calibration's rows only. Settings with a single dataset have no
    out-of-domain row; if no setting has two datasets, an ``InputError`` says so.
    """
    rows = []
    for _, idx in cell_groups(items, SETTING_KEYS):
        frame = items.iloc[idx].reset_index(drop=True)
        ds = frame["dataset"].astype(str).to_numpy()
        names = sorted(set(ds.tolist()))
        if len(names) < 2:
            continue
        data = padded(frame)
        split = _splits(frame, ds, seed, fractions)
        labels = {k: str(frame[k].iat[0]) for k in SETTING_KEYS if k in frame.columns}
        for target in names:
            own, other = ds == target, ds != target
            test = np.flatnonzero(own & data.has_pred & (split == "test"))
            if test.size == 0:
                continue
            in_domain = _fit(
                data,
                data.trainable & own & (split == "train"),
                data.trainable & own & (split == "dev"),
                candidates,
                features,
                seed,
            )
            ood = _fit(
                data,
                data.trainable & other & (split == "train"),
                data.trainable & other & (split == "dev"),
                candidates,
                features,
                seed,
            )
            tgt = data.take(test)
            nan = np.full(tgt.pred.shape, np.nan)
            rows.append(
                {
                    **labels,
                    "target": target,
                    "sources": "+".join(n for n in names if n != target),
                    "split": f"{target} {split_label(split[own], question_keys(frame[own]))}",
                    "n": int(test.size),
                    "train_size_in_domain": int((data.trainable & own & (split == "train")).sum()),
                    "train_size_ood": int((data.trainable & other & (split == "train")).sum()),
                    "chosen_in_domain": in_domain.chosen_ if in_domain else None,
                    "chosen_ood": ood.chosen_ if ood else None,
                    **_scored("raw", tgt.pred, tgt),
                    **_scored("in_domain", in_domain.predict_proba(tgt.pred) if in_domain else nan, tgt),
                    **_scored("ood", ood.predict_proba(tgt.pred) if ood else nan, tgt),
                }
            )
    if not rows:
        raise InputError(
            "out-of-domain calibration needs a setting (model x method x steering) with at least 2 datasets "
            "and test rows",
            where="items",
        )
    return pd.DataFrame(rows)
