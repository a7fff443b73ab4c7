"""The tracker protocol a sweep records its cells through, and the in-memory trackers.

The driver hands each finished cell to ``Tracker.log_cell`` at once, so a crash later loses no finished
cell, asks ``Tracker.finished_cells`` on start to resume, and calls ``Tracker.flush`` before it returns (a
tracker may write in the background; a sweep has ended only when its record is written).
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from distalign.records.results import CellResult


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
