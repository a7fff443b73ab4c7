"""What a sweep produces: one ``CellResult`` per cell, and the tracker protocol that records them.

The driver hands each finished cell to ``Tracker.log_cell`` at once, so a crash later loses no finished
cell, asks ``Tracker.finished_cells`` on start to resume, and calls ``Tracker.flush`` before it returns (a
tracker may write in the background; a sweep has ended only when its record is written).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

import pandas as pd

from distalign.sweep.config import CellConfig

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
    "status",
    "pred_probs",
    "human_probs",
    "tv",
    "alignment",
    "ordinal",  # ordinal positions of the item's options (None: non-substantive), for alignment/calibration
    "logprobs",  # log-probs of the options in the dataset's order (logprobs method only; None: missing)
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


@dataclass(frozen=True)
class SweepOutcome:
    results: list[CellResult]
    #: cells, finished, failed, skipped, requests, unique_requests, requests_sent, cache_hits, tokens, cost...
    totals: dict[str, float]
    #: (spec hash, error) of every failed cell
    failures: list[tuple[str, str]]
    #: what each engine pool reported before it was shut down (requests received, engine seconds, ...)
    engine_stats: dict[str, dict[str, Any]] = field(default_factory=dict)

    def result(self, spec_hash: str) -> CellResult:
        return next(r for r in self.results if r.spec_hash == spec_hash)


@runtime_checkable
class Tracker(Protocol):
    def finished_cells(self) -> set[str]: ...

    def log_cell(self, result: CellResult) -> Any: ...

    def flush(self) -> None: ...


class MemoryTracker:
    """A tracker that keeps results in memory (tests, dry runs, benchmarks without MLflow)."""

    def __init__(self, finished: set[str] | None = None) -> None:
        self.logged: list[CellResult] = []
        self._finished = set(finished or ())

    def finished_cells(self) -> set[str]:
        return set(self._finished)

    def log_cell(self, result: CellResult) -> None:
        self.logged.append(result)
        if result.status == "finished":
            self._finished.add(result.spec_hash)

    def flush(self) -> None:
        return None


class NullTracker(MemoryTracker):
    """Records nothing (the overhead benchmark's baseline)."""

    def log_cell(self, result: CellResult) -> None:
        return None
