"""The leaderboard of Meister et al. (2024), aggregated as the paper defines it (without the quirks of
its released code).

Per dataset, the per-(item, group) TVs of the steering modes being aggregated are pooled; a dataset's
score is the mean of its pool; "three" is the mean of the three dataset scores, reported only when all
three benchmark datasets are present (otherwise the aggregate is named "all"). 95% intervals come from
resampling each dataset's pool with replacement (``metrics.pooled_bootstrap``). Steering "all" is the
persona + few-shot pool the paper reports.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from distalign.metrics import (
    Interval,
    expected_sampling_tv,
    extraction_rate,
    knowledge_to_simulation_gap,
    majority_prediction,
    pad,
    pooled_bootstrap,
    total_variation,
    uniform_prediction,
)
from distalign.survey.model import DATASETS, Survey

ALL_STEERING = "all"
#: the steering modes pooled under "all" (the paper's headline numbers)
POOLED_STEERING: tuple[str, ...] = ("persona", "few_shot")
STEERING_ORDER: tuple[str, ...] = ("none", "persona", "few_shot")
BASELINES: tuple[str, ...] = ("uniform", "majority", "discretization_30")
ROW_KEYS: tuple[str, ...] = (
    "kind", "model", "method", "steering", "dataset", "mean", "ci_low", "ci_high", "n", "extraction_rate",
)  # fmt: skip


def aggregate_name(datasets: Sequence[str]) -> str:
    return "three" if set(DATASETS) <= set(datasets) else "all"


def _ordered(names: Sequence[str], order: Sequence[str]) -> list[str]:
    present = list(dict.fromkeys(names))
    return [d for d in order if d in present] + sorted(d for d in present if d not in order)


def _row(
    kind: str,
    model: str,
    method: str | None,
    steering: str | None,
    dataset: str,
    iv: Interval,
    rate: float | None,
) -> dict[str, Any]:
    return {
        "kind": kind,
        "model": model,
        "method": method,
        "steering": steering,
        "dataset": dataset,
        "mean": iv.mean,
        "ci_low": iv.low,
        "ci_high": iv.high,
        "n": iv.n,
        "extraction_rate": rate,
    }


def bootstrap_pools(
    pools: Mapping[str, np.ndarray],
    datasets_order: Sequence[str] = DATASETS,
    n_resamples: int = 1000,
    seed: int = 0,
) -> dict[str, Interval]:
    """Intervals per dataset pool and for the aggregate ("three" over the benchmark datasets, else "all")."""
    names = _ordered([d for d, v in pools.items() if len(v)], datasets_order)
    if not names:
        return {}
    agg = aggregate_name(names)
    inside = [d for d in names if agg == "all" or d in DATASETS]
    out = pooled_bootstrap({d: pools[d] for d in inside}, n_resamples=n_resamples, seed=seed, aggregate=agg)
    rest = [d for d in names if d not in inside]
    if rest:
        out |= pooled_bootstrap(
            {d: pools[d] for d in rest}, n_resamples=n_resamples, seed=seed, aggregate=None
        )
    return {d: out[d] for d in [*names, agg]}


def _rate(frame: pd.DataFrame) -> float:
    """Extraction rate over distinct predictions (a no-steering answer scored on six groups counts once)."""
    return extraction_rate(frame.drop_duplicates("row")["status"])


def leaderboard(
    scored: pd.DataFrame, datasets_order: Sequence[str] = DATASETS, n_resamples: int = 1000, seed: int = 0
) -> list[dict[str, Any]]:
    """JSON-ready rows per model x method x steering (``all`` and each mode) x dataset (+ aggregate).

    ``scored`` comes from ``score_predictions``; rows with NaN TV (unparsed under ``exclude``) leave the
    means but still count in the extraction rate.
    """
    rows: list[dict[str, Any]] = []
    for (model, method), g in scored.groupby(["model", "method"], sort=False):
        modes = _ordered(g["steering"].tolist(), STEERING_ORDER)
        selections = [(ALL_STEERING, g[g["steering"].isin(POOLED_STEERING)])] + [
            (s, g[g["steering"] == s]) for s in modes
        ]
        for steering, sub in selections:
            if sub.empty:
                continue
            by_ds = {d: f for d, f in sub.groupby("dataset", sort=False)}
            pools = {d: f["tv"].to_numpy(float) for d, f in by_ds.items()}
            pools = {d: v[~np.isnan(v)] for d, v in pools.items()}
            intervals = bootstrap_pools(pools, datasets_order, n_resamples, seed)
            for name, iv in intervals.items():
                frame = by_ds.get(name)
                if frame is None:  # the aggregate: over the datasets it averages
                    frame = sub[sub["dataset"].isin([d for d in intervals if d in by_ds and d != name])]
                rows.append(_row("model", str(model), str(method), steering, name, iv, _rate(frame)))
    return rows


def baseline_pools(survey: Survey) -> dict[str, np.ndarray]:
    """Per-(item, group) TV of each reference prediction on one survey."""
    human, mask = pad([d.probs for d in survey.distributions])
    return {
        "uniform": total_variation(uniform_prediction(mask), human),
        "majority": total_variation(majority_prediction(human, mask), human),
        "discretization_30": expected_sampling_tv(human, mask, n_samples=30),
    }


def baseline_rows(
    surveys: Mapping[str, Survey],
    datasets_order: Sequence[str] = DATASETS,
    n_resamples: int = 1000,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Uniform, majority vote and 30-sample discretization per dataset and aggregated, with intervals."""
    per_survey = {name: baseline_pools(s) for name, s in surveys.items() if s.distributions}
    rows: list[dict[str, Any]] = []
    for baseline in BASELINES:
        pools = {name: p[baseline] for name, p in per_survey.items()}
        for name, iv in bootstrap_pools(pools, datasets_order, n_resamples, seed).items():
            rows.append(_row("baseline", baseline, None, None, name, iv, None))
    return rows


def kss_table(rows: Sequence[Mapping[str, Any]], steering: str = ALL_STEERING) -> list[dict[str, Any]]:
    """Knowledge-to-simulation gap ``TV(seq) / TV(verbalize) - 1`` per model x dataset (Table 1b)."""
    tv: dict[tuple[str, str, str], float] = {
        (r["model"], r["dataset"], r["method"]): r["mean"]
        for r in rows
        if r["kind"] == "model" and r["steering"] == steering and r["method"] in ("seq", "verbalize")
    }
    out = []
    for (model, dataset, method), seq in tv.items():
        verb = tv.get((model, dataset, "verbalize"))
        if method == "seq" and verb is not None:
            gap = knowledge_to_simulation_gap(seq, verb)
            out.append(
                {
                    "model": model,
                    "steering": steering,
                    "dataset": dataset,
                    "tv_seq": seq,
                    "tv_verbalize": verb,
                    "kss": gap,
                }
            )
    return out


__all__ = [
    "ALL_STEERING",
    "BASELINES",
    "ROW_KEYS",
    "aggregate_name",
    "baseline_pools",
    "baseline_rows",
    "bootstrap_pools",
    "kss_table",
    "leaderboard",
]
