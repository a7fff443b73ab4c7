"""What a sweep produces: one ``CellResult`` per cell (its scored items table and metrics)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd

from distalign.records.config import CellConfig

CellStatus = Literal["finished", "failed"]
#: columns of a cell's items table, one row per scored (item, group)
ITEM_COLUMNS: tuple[str, ...] = (
    "dataset",
    "item_id",
    "attribute",
    "group",
    "model",
    "method",
    "steering",
    "prompt_hash",
    "responses",
    "options",  # the option labels in the order the model was shown them
    "letters",  # the keys of those options in the prompt (A, B, ... or 1, 2, ...), in the same order
    "status",
    "pred_probs",
    "human_probs",
    "tv",
    "alignment",
    "ordinal",  # ordinal positions of the item's options (None: non-substantive), for alignment/calibration
    "logprobs",  # log-probs of the options in the dataset's order (logprobs method only; None: missing)
    "example_set",  # supervision few-shot: which of the calibration's example sets the prompt showed
)
METRIC_NAMES: tuple[str, ...] = (
    "tv_mean",
    "tv_ci_low",
    "tv_ci_high",
    "alignment_mean",
    "extraction_rate",
    "requests",
    "requests_sent",
    "cache_hits",
    "prompt_tokens",
    "completion_tokens",
    "cost_usd",
    "wall_time_s",
)


@dataclass(frozen=True)
class CellResult:
    spec_hash: str
    cell: CellConfig
    status: CellStatus
    error: str | None = None
    items: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=list(ITEM_COLUMNS)), compare=False
    )
    metrics: dict[str, float] = field(default_factory=dict, compare=False)
    #: the calibration stage's outcome (fitted calibrators, params, figures) when the cell calibrates
    calibration: Any = field(default=None, compare=False)
    #: digests of the content the cell read (dataset, templates), part of its identity
    content: dict[str, str] = field(default_factory=dict, compare=False)
    #: the provider batches (batch mode) whose results answered this cell's requests when it ran
    batch_ids: tuple[str, ...] = field(default=(), compare=False)


@dataclass(frozen=True)
class SweepOutcome:
    results: list[CellResult]
    #: cells, finished, failed, skipped, requests, unique_requests, requests_sent, cache_hits, tokens, cost...
    totals: dict[str, float]
    #: (spec hash, error) of every failed cell
    failures: list[tuple[str, str]]
    #: what each engine pool reported before it was shut down (requests received, engine seconds, ...)
    engine_stats: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: the sweep folder the cells' results were written to
    folder: str = ""

    def result(self, spec_hash: str) -> CellResult:
        return next(r for r in self.results if r.spec_hash == spec_hash)
