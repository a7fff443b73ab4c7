"""The leaderboard rows the report formats. They are computed in the scoring layer
(``distalign.scoring.scores``, the one home of per-row, per-cell and pooled scores); this module only
names them for the report's modules."""

from __future__ import annotations

from distalign.scoring.scores import (
    ALL_STEERING,
    BASELINES,
    HUMAN_MODELS,
    POOLED_STEERING,
    ROW_KEYS,
    STEERING_ORDER,
    aggregate_name,
    baseline_pools,
    baseline_rows,
    bootstrap_pools,
    human_baseline_rows,
    kss_table,
    leaderboard,
    reference_pools,
)

__all__ = [
    "ALL_STEERING",
    "BASELINES",
    "HUMAN_MODELS",
    "POOLED_STEERING",
    "ROW_KEYS",
    "STEERING_ORDER",
    "aggregate_name",
    "baseline_pools",
    "baseline_rows",
    "bootstrap_pools",
    "human_baseline_rows",
    "kss_table",
    "leaderboard",
    "reference_pools",
]
