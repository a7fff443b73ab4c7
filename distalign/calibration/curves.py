"""Minimal supervision (Kambhatla et al. 2025, §6.1, Figure 3): how many human distributions does a
calibrator need?

The split is fixed once (80/10/10 by question, the same split the cell's calibrator used). For each
n in {1, 5, 10, 50, 100, 200, 500, 1000, 1200} (capped at the number of training distributions), 10 random
sets of n whole training distributions are drawn (:func:`~distalign.calibration.sampling.training_sets`,
the same draws the few-shot prompts use), a calibrator of one family is fitted on each (its
hyper-parameters tuned on the fixed dev split), and its test MSE is averaged over the 10 draws. The family
is the one the dev split chose for the cell's full calibrator (``chosen``), or any of linear, lasso, ridge
and random forest on request, so the curves differ only in how much supervision they had.

A drawn distribution whose model answer was not parsed (discarded under the paper's protocol) has no
training pair: the draw trains on the others, and a draw with none left is not fitted (``fitted`` counts
the draws that were).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from distalign.calibration.frame import padded, question_keys, scores, split_label
from distalign.calibration.regression import CANDIDATES, DistributionRegressor, option_mse
from distalign.calibration.sampling import (
    REPEATS,
    SPLIT,
    item_keys,
    split_questions,
    training_pool,
    training_sets,
)
from distalign.errors import InputError

SIZES: tuple[int, ...] = (1, 5, 10, 50, 100, 200, 500, 1000, 1200)
#: the family the dev split chose for the cell's calibrator trained on the whole train split
CHOSEN = "chosen"
METRICS: tuple[str, ...] = ("mse", "alignment", "tv")


def capped_sizes(sizes: Sequence[int], available: int) -> list[int]:
    """Each size capped at what is available (a size above it becomes all of it), without repeats."""
    return sorted({min(int(n), available) for n in sizes if n >= 1} - {0})


def curve_families(families: str | Sequence[str]) -> tuple[str, ...]:
    """``"chosen"``, ``"all"`` (the four families) or a list of them, checked."""
    names = [families] if isinstance(families, str) else list(families)
    out: list[str] = []
    for name in names:
        out += list(CANDIDATES) if name == "all" else [str(name)]
    unknown = [n for n in out if n not in (CHOSEN, *CANDIDATES)]
    if unknown or not out:
        raise InputError(
            f"unknown curve family {unknown or names!r}; known: {CHOSEN}, all, {', '.join(CANDIDATES)}",
            where="curve_families",
        )
    return tuple(dict.fromkeys(out))


def learning_curve(
    items: pd.DataFrame,
    sizes: Sequence[int] = SIZES,
    repeats: int = REPEATS,
    seed: int = 0,
    candidates: Sequence[str] = CANDIDATES,
    features: str = "plain",
    families: str | Sequence[str] = (CHOSEN,),
    fractions: Sequence[float] = SPLIT,
) -> pd.DataFrame:
    """One row per family x training size: test option MSE, alignment and TV (mean and std over the
    draws), with the uncalibrated scores of the same test rows. ``items`` is one cell's items table.

    ``candidates`` and ``features`` are the cell calibrator's (they decide which family is ``chosen``).
    """
    if repeats < 1:
        raise InputError(f"repeats must be at least 1, got {repeats}", where="repeats")
    wanted = curve_families(families)
    # the full calibrator (a model selection over every candidate) is fitted only to know the chosen family:
    # asked for, or to mark it among all four; a curve of named families skips it (``chosen`` is None)
    need_full = CHOSEN in wanted or set(CANDIDATES) <= set(wanted)
    data, pool, rows_of, dev, test, full, items = _prepare(
        items, seed, candidates, features, fractions, need_full
    )
    split = split_questions(question_keys(items), seed, fractions)
    chosen = full.chosen_ if full is not None else None
    fams = list(dict.fromkeys(chosen if f == CHOSEN else f for f in wanted))
    tdata = data.take(test)
    raw_tv, raw_alignment = scores(tdata.pred, tdata)
    common = {
        "raw_mse": option_mse(tdata.pred, tdata.human, tdata.mask),
        "raw_alignment": float(np.nanmean(raw_alignment)),
        "raw_tv": float(np.nanmean(raw_tv)),
        "test_size": int(test.size),
        "pool_size": len(pool),
        "split": split_label(split, question_keys(items)),
    }
    out = []
    for family in fams:
        for n in capped_sizes(sizes, len(pool)):
            runs = []
            for r, drawn in enumerate(training_sets(pool, n, repeats, seed)):
                picked = [i for k in drawn for i in rows_of.get(k, ())]
                if not picked:
                    continue
                model = DistributionRegressor((family,), features, seed + r)
                model.fit(data.pred[picked], data.human[picked], data.pred[dev], data.human[dev])
                cal = model.predict_proba(tdata.pred)
                tv, alignment = scores(cal, tdata)
                runs.append((option_mse(cal, tdata.human, tdata.mask), np.nanmean(alignment), np.nanmean(tv)))
            a = np.asarray(runs, dtype=float).reshape(-1, len(METRICS))
            out.append(
                {
                    "family": family,
                    "chosen": family == chosen if chosen is not None else None,
                    "n": n,
                    "repeats": repeats,
                    "fitted": len(runs),
                    **{f"{m}_mean": _mean(a[:, j]) for j, m in enumerate(METRICS)},
                    **{f"{m}_std": _std(a[:, j]) for j, m in enumerate(METRICS)},
                    **common,
                }
            )
    return pd.DataFrame(out)


def _prepare(
    items: pd.DataFrame,
    seed: int,
    candidates: Sequence[str],
    features: str,
    fractions: Sequence[float],
    need_full: bool = True,
) -> tuple:
    """The cell's fixed split, training pool, rows per training distribution, dev and test rows, and the
    calibrator fitted on the whole train split (its family is ``chosen``)."""
    items = items.reset_index(drop=True)
    data = padded(items)
    split = split_questions(question_keys(items), seed, fractions)
    keys = item_keys(items)
    pool = training_pool(keys, seed, fractions)
    rows_of: dict[tuple[str, ...], list[int]] = {}
    for i in np.flatnonzero(data.trainable & (split == "train")):
        rows_of.setdefault(keys[i], []).append(int(i))
    dev = np.flatnonzero(data.trainable & (split == "dev"))
    test = np.flatnonzero(data.has_pred & (split == "test"))
    if not rows_of or test.size == 0:
        raise InputError("no parsed training or test rows for a learning curve", where="items")
    full = None
    if need_full:
        train_all = np.concatenate([np.asarray(v) for v in rows_of.values()])
        full = DistributionRegressor(tuple(candidates), features, seed)
        full.fit(data.pred[train_all], data.human[train_all], data.pred[dev], data.human[dev])
    return data, pool, rows_of, dev, test, full, items


def few_example_groups(
    items: pd.DataFrame,
    n: int = 5,
    repeats: int = REPEATS,
    seed: int = 0,
    candidates: Sequence[str] = CANDIDATES,
    features: str = "plain",
    fractions: Sequence[float] = SPLIT,
) -> pd.DataFrame:
    """Kambhatla et al.'s Table 5 for one cell: per demographic group, test alignment raw, calibrated on the
    whole train split and calibrated on ``n`` training distributions (the chosen family, mean over the
    ``repeats`` draws of the learning curve), with the changes; most degraded by the ``n``-example
    calibrator first."""
    data, pool, rows_of, dev, test, full, items = _prepare(items, seed, candidates, features, fractions)
    tdata = data.take(test)
    _, raw = scores(tdata.pred, tdata)
    _, cal_full = scores(full.predict_proba(tdata.pred), tdata)
    few = []
    for r, drawn in enumerate(training_sets(pool, n, repeats, seed)):
        picked = [i for k in drawn for i in rows_of.get(k, ())]
        if picked:
            model = DistributionRegressor((full.chosen_,), features, seed + r)
            model.fit(data.pred[picked], data.human[picked], data.pred[dev], data.human[dev])
            few.append(scores(model.predict_proba(tdata.pred), tdata)[1])
    cal_few = np.nanmean(np.vstack(few), axis=0) if few else np.full(len(test), np.nan)
    rows = items.iloc[test][["dataset", "attribute", "group"]].astype(str).reset_index(drop=True)
    frame = rows.assign(raw=raw, full=cal_full, few=cal_few)
    out = frame.groupby(["dataset", "attribute", "group"], sort=True).agg(
        n_test=("raw", "size"), alignment_raw=("raw", "mean"), alignment_full=("full", "mean"),
        alignment_few=("few", "mean"),
    ).reset_index()  # fmt: skip
    out["delta_full"] = out["alignment_full"] - out["alignment_raw"]
    out["delta_few"] = out["alignment_few"] - out["alignment_raw"]
    out.insert(3, "family", full.chosen_)
    out.insert(4, "n_examples", n)
    out.insert(5, "draws", len(few))
    return out.sort_values("delta_few", kind="stable").reset_index(drop=True)


def _mean(x: np.ndarray) -> float:
    return float(x.mean()) if x.size else float("nan")


def _std(x: np.ndarray) -> float:
    return float(x.std(ddof=1)) if x.size > 1 else float("nan")
