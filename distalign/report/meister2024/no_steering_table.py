"""Table 10 of the benchmark paper: each model x method without steering beside the same model steered
(persona + few-shot), on OpinionQA and NYT (the two datasets the release ran without steering), and the
human annotators the same way.

Without steering the model is asked the question alone and its answer is scored against every group's
distribution. The release's own leaderboard CSV gives the no-steering rows per dataset and the steered
OpinionQA + NYT aggregate ("both"); those are set beside. GlobalOpinionQA has no no-steering run in the
release (no task0 outputs; its CSV rows are blank)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from distalign.report.leaderboard import ALL_STEERING
from distalign.report.meister2024 import notes, tables
from distalign.report.meister2024.humans import HUMAN
from distalign.report.meister2024.published import BOTH
from distalign.report.meister2024.release import MODELS

HUMAN_DATASETS: tuple[str, ...] = ("opinionqa", "nyt_books")
DATASETS: tuple[str, ...] = (*HUMAN_DATASETS, tables.TWO)


def _published(row: dict[str, Any], p: Any) -> None:
    if p is not None and not math.isnan(p.mean):
        row |= {"published": p.mean, "pm": p.pm, "source": "release CSV", "fixture": False}


def _derived_mean(derived: pd.DataFrame, steerings: Sequence[str], dataset: str) -> float:
    """The annotators' mean from the release's own per-pair TVs (``*_human_tv_data.json``); for ``all``
    the mean of the OpinionQA and NYT means."""
    names = HUMAN_DATASETS if dataset == tables.TWO else (dataset,)
    part = derived[derived["steering"].isin(steerings)]
    means = [part[part["dataset"] == d]["tv"].mean() for d in names]
    return float(np.mean(means))


def table_10(
    rows: Sequence[Mapping[str, Any]],
    two_rows: Sequence[Mapping[str, Any]],
    human_rows: Sequence[Mapping[str, Any]],
    release: pd.DataFrame,
    provenance: tables.ProvenanceOf,
    derived: pd.DataFrame,
) -> pd.DataFrame:
    """``rows``: the leaderboard of every dataset (no steering, per dataset and OpinionQA + NYT);
    ``two_rows``: the steered leaderboard of OpinionQA + NYT; ``human_rows``: the annotators';
    ``provenance``: what the release made of the model rows; ``derived``: the release's per-pair TVs of
    the annotators (``humans.derived_human_tvs``)."""
    index = tables.index_rows([*rows, *human_rows])
    steered = tables.index_rows([*two_rows, *human_rows])
    pub = {
        tables.row_key(r.kind, r.model, r.method, r.steering, "all" if r.dataset == BOTH else r.dataset): r
        for r in release.itertuples()
    }
    out = []
    whos = [("model", m, method) for m in MODELS for method in tables.METHOD_ORDER]
    for kind, model, method in [*whos, ("human", HUMAN, "estimate")]:
        for dataset in DATASETS:
            r = index.get(tables.row_key(kind, model, method, "none", dataset))
            if r is None:
                continue
            row = tables.table_row(r, kind=kind, model=model, method=method, steering="none", dataset=dataset)
            if dataset != tables.TWO:
                _published(row, pub.get(tables.row_key(kind, model, method, "none", dataset)))
            reason = notes.NO_STEERING_OPINIONQA if dataset == "opinionqa" else ""
            if kind == "model":
                names = HUMAN_DATASETS if dataset == tables.TWO else (dataset,)
                own = notes.model_reason(method, provenance(model, method, ("none",), names))
                reason = "; ".join(x for x in (reason, own) if x)
            else:
                row["release_recomputed"] = _derived_mean(derived, ("none",), dataset)
            tables.explain(row, reason)
            out.append(row)
        r = steered.get(tables.row_key(kind, model, method, ALL_STEERING, tables.TWO))
        if r is None:
            continue
        row = tables.table_row(
            r, kind=kind, model=model, method=method, steering=ALL_STEERING, dataset=tables.TWO
        )
        p = pub.get(tables.row_key(kind, model, None if kind == "human" else method, ALL_STEERING, "all"))
        _published(row, p)
        if kind == "model":
            prov = provenance(model, method, tables.STEERED, HUMAN_DATASETS)
            row["release_recomputed"] = prov.release_mean
            tables.explain(row, tables.model_reason(row, prov))
        else:
            row["release_recomputed"] = _derived_mean(derived, tables.STEERED, tables.TWO)
            tables.explain(row, "")
        out.append(row)
    return tables.finish(out)


__all__ = ["table_10"]
