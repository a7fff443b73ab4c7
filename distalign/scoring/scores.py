"""Every score of the benchmark, in one place: per row (a prediction against a group's human distribution),
per cell (a sweep cell's mean TV with its bootstrap interval) and pooled (the leaderboard of Meister et al.
2024, its baselines and the knowledge-to-simulation gap). The report layer only formats these rows.

Pooled, as the paper defines it (without the quirks of its released code): per dataset, the per-(item,
group) TVs of the steering modes being aggregated are pooled; a dataset's score is the mean of its pool;
"three" is the mean of the three dataset scores, reported only when all three benchmark datasets are
present (otherwise the aggregate is named "all"). 95% intervals come from resampling each dataset's pool
with replacement (``metrics.pooled_bootstrap``). Steering "all" is the persona + few-shot pool the paper
reports. Every block is bootstrapped in one pass with common random numbers: a dataset's pools of equal
size (two models' scores on the same items) are resampled with the same row indices, a paired bootstrap
that also makes their comparison sharper (see ``metrics.bootstrap``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from distalign.metrics import (
    Interval,
    bootstrap_mean,
    expected_sampling_tv,
    extraction_rate,
    knowledge_to_simulation_gap,
    majority_prediction,
    pad,
    total_variation,
    uniform_prediction,
    wasserstein_alignment,
)
from distalign.metrics.bootstrap import pooled_bootstraps
from distalign.metrics.extraction import EXTRACTED
from distalign.records.config import UnparsedPolicy
from distalign.scoring.predictions import Resolved
from distalign.scoring.table import SurveyTable
from distalign.survey.model import DATASETS, Survey

SCORED_COLUMNS: tuple[str, ...] = (
    "row", "model", "method", "steering", "dataset", "item_id", "attribute", "group",
    "status", "detail", "n_total", "n_valid", "tv", "alignment", "pred", "human",
)  # fmt: skip


def score_resolved(
    resolved: Resolved, table: SurveyTable, unparsed: UnparsedPolicy = "uniform"
) -> pd.DataFrame:
    """Per row: each validated prediction against each group it is scored on (TV and Wasserstein
    alignment), the vectorised part of :func:`~distalign.scoring.score.score_predictions`.

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


def cell_scores(scored: pd.DataFrame, n_resamples: int = 1000, seed: int = 0) -> dict[str, float]:
    """Per cell: mean TV with its bootstrap interval, mean alignment and the extraction rate (over
    distinct predictions: a no-steering answer scored against six groups counts once) of one cell's
    scored rows. Rows with NaN TV (unparsed under ``exclude``) leave the means, not the rate."""
    tv = scored["tv"].to_numpy(dtype=float)
    ci = bootstrap_mean(tv[np.isfinite(tv)], n_resamples=n_resamples, seed=seed)
    alignment = scored["alignment"].to_numpy(dtype=float)
    return {
        "tv_mean": ci.mean,
        "tv_ci_low": ci.low,
        "tv_ci_high": ci.high,
        "alignment_mean": float(np.nanmean(alignment)) if np.isfinite(alignment).any() else float("nan"),
        "extraction_rate": extraction_rate(scored.drop_duplicates("row")["status"].tolist()),
    }


ALL_STEERING = "all"
#: the steering modes pooled under "all" (the paper's headline numbers)
POOLED_STEERING: tuple[str, ...] = ("persona", "few_shot")
STEERING_ORDER: tuple[str, ...] = ("none", "persona", "few_shot")
BASELINES: tuple[str, ...] = ("uniform", "majority", "discretization_30")
ROW_KEYS: tuple[str, ...] = (
    "kind", "model", "method", "steering", "dataset", "mean", "ci_low", "ci_high", "n", "extraction_rate",
)  # fmt: skip
#: predictors that are people, not models (the benchmark's human annotators): their rows get kind "human"
HUMAN_MODELS: frozenset[str] = frozenset({"human", "humans"})


#: a cell at or above this share of parsed answers is signal; below it, mostly filler (marked everywhere)
MIN_PARSED = 0.9


def aggregate_name(datasets: Sequence[str]) -> str:
    """The headline dataset row: "three" (the benchmark's three), "all" (the mean of two or more others),
    or the only dataset itself (no aggregate is made of one dataset)."""
    present = list(dict.fromkeys(datasets))
    if set(DATASETS) <= set(present):
        return "three"
    return present[0] if len(present) == 1 else "all"


def headline_steering(steerings: Sequence[str]) -> str:
    """The steering of the headline rows: "all" (persona + few-shot pooled) when present, else persona,
    few-shot, none, in that order (the paper's headline is steered)."""
    present = set(map(str, steerings))
    if set(POOLED_STEERING) <= present:  # the modes themselves: their pool is the headline
        present.add(ALL_STEERING)
    for name in (ALL_STEERING, *POOLED_STEERING, "none"):
        if name in present:
            return name
    return sorted(present)[0] if present else ""


def is_filler(row: Mapping[str, Any], min_parsed: float = MIN_PARSED) -> bool:
    """Whether a model row's share of parsed answers is below ``min_parsed`` (its number is mostly the
    fallback for unparsed answers, not the model's)."""
    rate = row.get("extraction_rate")
    try:
        r = float(rate)
    except (TypeError, ValueError):
        return False
    return row.get("kind") != "baseline" and r == r and r < min_parsed


def filler_rows(rows: Sequence[Mapping[str, Any]], min_parsed: float = MIN_PARSED) -> list[Mapping[str, Any]]:
    """The headline-level model rows below ``min_parsed``: per dataset (and aggregate), per steering mode
    and pooled, as shown."""
    return [r for r in rows if r.get("kind") in ("model", "human") and is_filler(r, min_parsed)]


def in_order(names: Iterable[Any], order: Sequence[str]) -> list[str]:
    """``names`` as text, deduplicated, in ``order``, then the names it does not list alphabetically."""
    present = list(dict.fromkeys(map(str, names)))
    return [n for n in order if n in present] + sorted(n for n in present if n not in order)


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


def _requests(
    pools: Mapping[str, np.ndarray], datasets_order: Sequence[str]
) -> tuple[list[str], str, list[tuple[dict[str, np.ndarray], str | None]]]:
    """The non-empty pools in report order, the aggregate's name, and the bootstrap requests: the
    datasets the aggregate averages (with it), then any others on their own."""
    names = in_order([d for d, v in pools.items() if len(v)], datasets_order)
    agg = aggregate_name(names)
    inside = [d for d in names if agg != "three" or d in DATASETS]
    rest = [d for d in names if d not in inside]
    made = agg if len(inside) > 1 else None  # one dataset is its own headline row
    requests: list[tuple[dict[str, np.ndarray], str | None]] = [({d: pools[d] for d in inside}, made)]
    if rest:
        requests.append(({d: pools[d] for d in rest}, None))
    return names, agg, requests


def _bootstrap_many(
    pool_sets: Sequence[Mapping[str, np.ndarray]], datasets_order: Sequence[str], n_resamples: int, seed: int
) -> list[dict[str, Interval]]:
    """:func:`bootstrap_pools` for many pool sets in one pass, so that pools of the same dataset and
    size share their resamples (``metrics.pooled_bootstraps``)."""
    plans = [
        _requests(pools, datasets_order) if any(len(v) for v in pools.values()) else None
        for pools in pool_sets
    ]
    requests = [r for plan in plans if plan is not None for r in plan[2]]
    results = iter(pooled_bootstraps(requests, n_resamples=n_resamples, seed=seed))
    out: list[dict[str, Interval]] = []
    for plan in plans:
        if plan is None:
            out.append({})
            continue
        names, agg, reqs = plan
        merged: dict[str, Interval] = {}
        for _ in reqs:
            merged |= next(results)
        out.append({d: merged[d] for d in dict.fromkeys([*names, agg])})
    return out


def bootstrap_pools(
    pools: Mapping[str, np.ndarray],
    datasets_order: Sequence[str] = DATASETS,
    n_resamples: int = 1000,
    seed: int = 0,
) -> dict[str, Interval]:
    """Intervals per dataset pool and for the aggregate ("three" over the benchmark datasets, else "all")."""
    return _bootstrap_many([pools], datasets_order, n_resamples, seed)[0]


@dataclass(frozen=True)
class _Selection:
    """One leaderboard block: its labels and, per dataset, the positions of its scored rows."""

    model: str
    method: str
    steering: str
    by_dataset: dict[str, np.ndarray]


def _selections(scored: pd.DataFrame) -> list[_Selection]:
    """Per model x method, the steering "all" pool and each mode, as row positions (no frame copies)."""
    steering = scored["steering"].to_numpy(dtype=object)
    dataset_codes, datasets = pd.factorize(scored["dataset"])
    out = []
    groups = scored.groupby(["model", "method"], sort=False).ngroup().to_numpy()
    for g in range(groups.max() + 1 if len(groups) else 0):
        pos = np.flatnonzero(groups == g)
        model, method = (str(scored[c].iat[pos[0]]) for c in ("model", "method"))
        modes = in_order(pd.unique(steering[pos]).tolist(), STEERING_ORDER)
        picks = [(s, steering[pos] == s) for s in modes]
        if set(POOLED_STEERING) <= set(modes):  # "all" pools persona and few-shot, so only with both
            picks.insert(0, (ALL_STEERING, np.isin(steering[pos], POOLED_STEERING)))
        for name, keep in picks:
            rows = pos[keep]
            if rows.size:
                codes = dataset_codes[rows]
                by_dataset = {str(datasets[c]): rows[codes == c] for c in pd.unique(codes)}
                out.append(_Selection(model, method, name, by_dataset))
    return out


def _rates(
    sel: _Selection, row_ids: pd.Series, extracted: np.ndarray, aggregates: Mapping[str, Sequence[str]]
) -> dict[str, float]:
    """Extraction rate per dataset and per aggregate (over the datasets it averages), over distinct
    predictions: a no-steering answer scored on six groups counts once."""
    rates, sizes = {}, {}
    for d, rows in sel.by_dataset.items():
        first = rows[~row_ids.iloc[rows].duplicated().to_numpy()]
        rates[d], sizes[d] = float(extracted[first].mean()), first.size
    for agg, members in aggregates.items():
        n = sum(sizes[d] for d in members)
        rates[agg] = sum(rates[d] * sizes[d] for d in members) / n if n else float("nan")
    return rates


def leaderboard(
    scored: pd.DataFrame, datasets_order: Sequence[str] = DATASETS, n_resamples: int = 1000, seed: int = 0
) -> list[dict[str, Any]]:
    """JSON-ready rows per model x method x steering (``all`` and each mode) x dataset (+ aggregate).

    ``scored`` comes from ``score_predictions``; rows with NaN TV (unparsed under ``exclude``) leave the
    means but still count in the extraction rate. All blocks are bootstrapped together (see the module
    docstring); each row's interval is the one :func:`bootstrap_pools` gives for its block alone.
    """
    extraction_rate(pd.unique(scored["status"]))  # rejects unknown statuses before any work
    extracted = scored["status"].isin(EXTRACTED).to_numpy()
    tv = scored["tv"].to_numpy(float)
    selections = _selections(scored)
    pool_sets = [{d: tv[r][~np.isnan(tv[r])] for d, r in sel.by_dataset.items()} for sel in selections]
    rows: list[dict[str, Any]] = []
    for sel, intervals in zip(
        selections, _bootstrap_many(pool_sets, datasets_order, n_resamples, seed), strict=True
    ):
        if not intervals:  # every score of the selection was excluded
            continue
        names = [d for d in intervals if d in sel.by_dataset]
        agg = aggregate_name(names)
        averaged = [d for d in names if agg != "three" or d in DATASETS]
        aggregates = {agg: averaged} if agg in intervals and agg not in sel.by_dataset else {}
        rates = _rates(sel, scored["row"], extracted, aggregates)
        kind = "human" if sel.model in HUMAN_MODELS else "model"
        for name, iv in intervals.items():
            rows.append(_row(kind, sel.model, sel.method, sel.steering, name, iv, rates[name]))
    return rows


def baseline_pools(survey: Survey) -> dict[str, np.ndarray]:
    """Per-(item, group) TV of each reference prediction on one survey."""
    return reference_pools([d.probs for d in survey.distributions])


def reference_pools(distributions: Sequence[Sequence[float]]) -> dict[str, np.ndarray]:
    """Per-distribution TV of each reference prediction against some human distributions (e.g. the
    distinct ones a sweep scored, when the survey files are not at hand)."""
    human, mask = pad(list(distributions))
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
    return _baseline_rows(per_survey, datasets_order, n_resamples, seed)


def human_baseline_rows(
    distributions: Mapping[str, Sequence[Sequence[float]]],
    datasets_order: Sequence[str] = DATASETS,
    n_resamples: int = 1000,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """:func:`baseline_rows` from each dataset's human distributions themselves (one per item x group)."""
    pools = {name: reference_pools(d) for name, d in distributions.items() if len(d)}
    return _baseline_rows(pools, datasets_order, n_resamples, seed)


def _baseline_rows(
    per_survey: Mapping[str, Mapping[str, np.ndarray]],
    datasets_order: Sequence[str],
    n_resamples: int,
    seed: int,
) -> list[dict[str, Any]]:
    pool_sets = [{name: p[baseline] for name, p in per_survey.items()} for baseline in BASELINES]
    intervals = _bootstrap_many(pool_sets, datasets_order, n_resamples, seed)
    return [
        _row("baseline", baseline, None, None, name, iv, None)
        for baseline, by_name in zip(BASELINES, intervals, strict=True)
        for name, iv in by_name.items()
    ]


def kss_table(
    rows: Sequence[Mapping[str, Any]],
    steering: str | None = None,
    min_parsed: float | None = MIN_PARSED,
) -> list[dict[str, Any]]:
    """Knowledge-to-simulation gap ``TV(seq) / TV(verbalize) - 1`` per model x dataset (Table 1b), on
    ``steering`` (default: the headline steering of ``rows``, see :func:`headline_steering`). A pair
    where either method parsed fewer than ``min_parsed`` of its answers is left out (its TV is mostly
    filler); ``min_parsed=None`` keeps every pair."""
    if steering is None:
        steering = headline_steering([r["steering"] for r in rows if r["kind"] == "model"])
    picked = [
        r
        for r in rows
        if r["kind"] == "model" and r["steering"] == steering and r["method"] in ("seq", "verbalize")
    ]
    filler = {
        (r["model"], r["dataset"], r["method"])
        for r in picked
        if min_parsed is not None and is_filler(r, min_parsed)
    }
    tv: dict[tuple[str, str, str], float] = {
        (r["model"], r["dataset"], r["method"]): r["mean"] for r in picked
    }
    out = []
    for (model, dataset, method), seq in tv.items():
        verb = tv.get((model, dataset, "verbalize"))
        if method != "seq" or verb is None:
            continue
        if (model, dataset, "seq") in filler or (model, dataset, "verbalize") in filler:
            continue
        out.append(
            {
                "model": model,
                "steering": steering,
                "dataset": dataset,
                "tv_seq": seq,
                "tv_verbalize": verb,
                "kss": knowledge_to_simulation_gap(seq, verb),
            }
        )
    return out


__all__ = [
    "ALL_STEERING",
    "BASELINES",
    "MIN_PARSED",
    "filler_rows",
    "headline_steering",
    "is_filler",
    "HUMAN_MODELS",
    "ROW_KEYS",
    "SCORED_COLUMNS",
    "aggregate_name",
    "baseline_pools",
    "baseline_rows",
    "bootstrap_pools",
    "cell_scores",
    "human_baseline_rows",
    "kss_table",
    "leaderboard",
    "reference_pools",
    "score_resolved",
]
