"""The GlobalOpinionQA appendix tables of the benchmark paper, from the release: which countries the 100
questions evaluate (the first three of each question's ``countries``), and per country the models' mean
TV (persona + few-shot steering, each model's four methods) beside the uniform baseline.

The paper's text is not available here, so no printed value stands beside these numbers; the release
holds no per-country computation either (its leaderboard pools the countries)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from distalign.report.meister2024 import tables
from distalign.report.meister2024.release import COUNTRY, MODELS
from distalign.survey.model import Survey

DATASET = "global_opinions"


def country_table(
    scored: pd.DataFrame, survey: Survey, methods: Sequence[str] = tables.METHOD_ORDER
) -> pd.DataFrame:
    """One row per country (most evaluated first): ``pairs`` (questions evaluating it), ``uniform`` (the
    uniform baseline's mean TV there) and one column ``MODEL | METHOD`` per model x method with its mean
    TV over the country's persona + few-shot answers (answers nobody could read left out)."""
    uniform: dict[str, list[float]] = {}
    for d in survey.distributions:
        p = np.asarray(d.probs, dtype=float)
        uniform.setdefault(d.group, []).append(0.5 * float(np.abs(p - 1 / len(p)).sum()))
    part = scored[
        (scored["dataset"] == DATASET)
        & (scored["attribute"] == COUNTRY)
        & scored["steering"].isin(tables.STEERED)
    ]
    means = part.groupby(["model", "method", "group"])["tv"].mean()
    out = pd.DataFrame(
        {"country": list(uniform), "pairs": [len(v) for v in uniform.values()],
         "uniform": [float(np.mean(v)) for v in uniform.values()]}
    )  # fmt: skip
    for model in MODELS:
        for method in methods:
            if (model, method) in means.index.droplevel("group"):
                col = means.loc[(model, method)]
                out[f"{model} | {method}"] = out["country"].map(col).astype(float)
    return out.sort_values(["pairs", "country"], ascending=[False, True]).reset_index(drop=True)


def country_markdown(frame: pd.DataFrame, title: str, intro: str = "") -> str:
    """The country table as Markdown (TVs with 3 decimals; a model without a method is left out)."""
    head = list(frame.columns)
    lines = [f"# {title}", "", *([intro, ""] if intro else [])]
    lines += ["| " + " | ".join(h.replace("|", "/") for h in head) + " |", "|" + "---|" * len(head)]
    for r in frame.itertuples(index=False):
        cells = [
            "-" if isinstance(v, float) and np.isnan(v) else f"{v:.3f}" if isinstance(v, float) else str(v)
            for v in r
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


__all__ = ["country_markdown", "country_table"]
