"""The leaderboard rows the report formats. They are computed in the scoring layer
(``distalign.scoring.scores``, the one home of per-row, per-cell and pooled scores); this module only
names them for the report's modules and words what they cover."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from distalign.report import style
from distalign.scoring.scores import (
    ALL_STEERING,
    BASELINES,
    HUMAN_MODELS,
    MIN_PARSED,
    POOLED_STEERING,
    ROW_KEYS,
    STEERING_ORDER,
    aggregate_name,
    baseline_pools,
    baseline_rows,
    bootstrap_pools,
    filler_rows,
    headline_steering,
    human_baseline_rows,
    is_filler,
    kss_table,
    leaderboard,
    reference_pools,
)


def steering_label(steering: str) -> str:
    """How a steering row is named in captions: what it pools, never more."""
    if steering == ALL_STEERING:
        return "persona + few-shot steering"
    return f"steering {steering.replace('_', '-')}"


def filler_note(rows: Sequence[Mapping[str, Any]], min_parsed: float = MIN_PARSED) -> str:
    """One line naming the cells below ``min_parsed`` (model x method x steering x dataset, each with its
    parsed share), or "" when there are none."""
    seen: dict[tuple[str, str, str, str], float] = {}
    for r in filler_rows(rows, min_parsed):
        if r["steering"] == ALL_STEERING or r["dataset"] in ("three", "all"):
            continue  # aggregates of the cells named below
        seen[(str(r["model"]), str(r["method"]), str(r["steering"]), str(r["dataset"]))] = float(
            r["extraction_rate"]
        )
    if not seen:
        return ""
    cells = "; ".join(
        f"{style.display(m)} {style.method_label(me)} × {style.label(s, style.STEERING_LABELS)} on "
        f"{style.label(d, style.DATASET_LABELS)}: {rate:.0%} parsed"
        for (m, me, s, d), rate in seen.items()
    )
    return (
        f"{len(seen)} cell(s) parsed fewer than {min_parsed:.0%} of their answers (the rest are filler, "
        f"marked † and left out of the knowledge-to-simulation gap): {cells}"
    )


__all__ = [
    "ALL_STEERING",
    "BASELINES",
    "HUMAN_MODELS",
    "MIN_PARSED",
    "POOLED_STEERING",
    "ROW_KEYS",
    "STEERING_ORDER",
    "aggregate_name",
    "baseline_pools",
    "baseline_rows",
    "bootstrap_pools",
    "filler_note",
    "filler_rows",
    "headline_steering",
    "human_baseline_rows",
    "is_filler",
    "kss_table",
    "leaderboard",
    "reference_pools",
    "steering_label",
]
