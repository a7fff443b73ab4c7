"""Failed cells summarised by kind: how many, the first message, what to check.

A sweep where every cell hit the same refused port or rejected key should end with one line saying so and
what to check, not with a list of identical errors or a traceback from the report that had nothing to show.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

#: (pattern in the error, what to check); ``{key}``, ``{base}``, ``{weights}`` come from the cell's model
_HINTS: tuple[tuple[str, str], ...] = (
    (r"\b401\b|unauthori[sz]ed|authentication|invalid api key|incorrect api key", "check {key}"),
    (r"\b403\b|permission|forbidden", "check that {key} may use model {weights}"),
    (r"\b404\b|not found|does not exist", "check model.weights ({weights}) and model.serving.api_base"),
    (r"\b429\b|rate limit", "lower model.serving.rpm / max_concurrency, or try again later"),
    (
        r"connect|refused|unreachable|timed out|timeout|name or service",
        "check that the server at {base} is running and reachable",
    ),
    (r"\b5\d\d\b|server error|internal error", "the server at {base} failed: see its logs"),
    (r"planning failed", "check the cell's dataset and steering (run with sweep.dry_run=true)"),
    (r"scoring failed", "see the log above; the cell's answers are kept in the response store"),
)
#: parts of a message that differ between cells failing the same way (counts, hashes)
_VOLATILE = re.compile(r"\b\d+ of \d+\b|\b[0-9a-f]{16,}\b", re.IGNORECASE)


@dataclass
class FailureKind:
    message: str
    hint: str
    model: str
    api_base: str | None = None
    cells: list[str] = field(default_factory=list)


def _first_line(error: str) -> str:
    line = next((ln.strip() for ln in error.splitlines() if ln.strip()), "unknown error")
    return line[:240]


def hint_for(error: str, cell: Any = None) -> str:
    serving = getattr(getattr(cell, "model", None), "serving", None)
    names = {
        "key": getattr(serving, "api_key_env", None) or "the API key",
        "base": getattr(serving, "api_base", None) or "the configured address",
        "weights": getattr(getattr(cell, "model", None), "weights", None) or "?",
    }
    low = error.lower()
    for pattern, hint in _HINTS:
        if re.search(pattern, low):
            return hint.format(**names)
    return "see the cell's error in cell.json or its MLflow run (tag distalign.error)"


def summarise(results: Iterable[Any]) -> list[FailureKind]:
    """The failed results (``status == "failed"``) grouped by their first error line, largest group first."""
    kinds: dict[str, FailureKind] = {}
    for r in results:
        if getattr(r, "status", None) != "failed":
            continue
        message = _first_line(str(r.error or ""))
        model = r.cell.model
        key = f"{model.name}|{_VOLATILE.sub('…', message)}"
        kind = kinds.setdefault(
            key, FailureKind(message, hint_for(message, r.cell), model.name, model.serving.api_base)
        )
        kind.cells.append(r.spec_hash)
    return sorted(kinds.values(), key=lambda k: -len(k.cells))


def failure_lines(kinds: list[FailureKind], total: int) -> list[str]:
    """One line per kind: "6 of 6 cells of model M (at URL) failed: <first message> — <what to check>"."""
    return [
        f"{len(k.cells)} of {total} cell(s) of model {k.model}"
        + (f" (at {k.api_base})" if k.api_base else "")
        + f" failed: {k.message} — {k.hint}"
        for k in kinds
    ]
