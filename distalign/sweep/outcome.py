"""What a launch ends with: the outcome a sweep returns (to the Hydra launcher and to tests), or one line
on stderr and an exit status."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

from distalign.errors import InputError
from distalign.records.config import CellConfig
from distalign.sweep.cells import cell_hash


@dataclass
class Outcome:
    summaries: dict[str, dict[str, Any]] = field(default_factory=dict)
    leaderboard: list[dict[str, Any]] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    tracking_uri: str | None = None
    parent_run_id: str | None = None
    folder: str | None = None

    def summary_for(self, cell: CellConfig) -> dict[str, Any]:
        try:
            key = cell_hash(cell)
        except InputError:
            return {"status": "skipped"}
        return self.summaries.get(key, {"status": "skipped"})


def fail(message: str, code: int = 2) -> SystemExit:
    """Prints ``distalign: message`` on stderr; the caller raises what it returns."""
    print(f"distalign: {message}", file=sys.stderr)
    return SystemExit(code)
