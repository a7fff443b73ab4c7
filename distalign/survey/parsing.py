"""Small pure helpers shared by the loaders: reading release files, literal lists, ordinal defaults."""

from __future__ import annotations

import ast
import json
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from distalign.errors import InputError
from distalign.survey.model import is_non_substantive

# Labels that record a missing answer rather than an opinion. GlobalOpinionQA (Pew + WVS/EVS) spells
# them in several ways ("DK/Refused", "No answer", "Missing; Unknown", "Other missing; …").
_MISSING = re.compile(r"^(other )?missing\b|^(not sure|refused|don['’]?t know|dk\b)", re.IGNORECASE)
#: the table formats read by extension (custom surveys, predictions)
TABLE_SUFFIXES = {
    ".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".parquet": "parquet", ".pq": "parquet",
}  # fmt: skip


def read_json(path: Path) -> Any:
    try:
        with path.open(encoding="utf-8") as fh:
            return json.load(fh)
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON ({exc.msg} at line {exc.lineno})", file=path) from None


def table_kind(path: Path, what: str) -> str:
    """``jsonl``, ``csv`` or ``parquet``, by the file's extension."""
    kind = TABLE_SUFFIXES.get(path.suffix.lower())
    if kind is None:
        known = ", ".join(TABLE_SUFFIXES)
        raise InputError(f"unknown {what} format {path.suffix!r} (use {known})", file=path)
    return kind


def read_jsonl(path: Path, count: Literal["line", "row"] = "line") -> Iterator[tuple[int, dict[str, Any]]]:
    """The JSON object of each non-blank line with its number: the file's line, or with ``count="row"``
    the data row (blank lines not counted); errors name that number."""
    rows = 0
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            rows += 1
            n = lineno if count == "line" else rows
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"not valid JSON ({exc.msg})", file=path, where=f"{count} {n}") from None
            if not isinstance(obj, dict):
                raise InputError("expected one JSON object per line", file=path, where=f"{count} {n}")
            yield n, obj


def literal_list(text: str, *, file: Path, where: str) -> list[Any]:
    """A list written as JSON or as a Python literal (the release uses both); never ``eval``."""
    for parse in (json.loads, ast.literal_eval):
        try:
            value = parse(text)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue
        if isinstance(value, list | tuple):
            return list(value)
    raise InputError(f'expected a list such as ["a", "b"], got {text[:80]!r}', file=file, where=where)


def non_substantive_label(label: str) -> bool:
    """Options carrying no opinion (don't know, refused, missing codes), by label."""
    return is_non_substantive(label) or bool(_MISSING.match(label.strip()))


def default_ordinal(options: Sequence[str]) -> tuple[float | None, ...]:
    """Positions 1..N in shown order for substantive options; ``None`` for no-opinion ones."""
    out: list[float | None] = []
    pos = 0
    for label in options:
        if non_substantive_label(label):
            out.append(None)
        else:
            pos += 1
            out.append(float(pos))
    return tuple(out)


def counts_to_probs(counts: Mapping[str, float], options: Sequence[str]) -> tuple[np.ndarray, float] | None:
    """Counts keyed by option label -> aligned probabilities and total; ``None`` when nobody answered.

    A label missing from ``counts`` was chosen by nobody (the release omits zero cells)."""
    c = np.array([float(counts.get(o, 0.0)) for o in options])
    total = float(c.sum())
    if total <= 0 or not math.isfinite(total):
        return None
    return c / total, total


def renormalised(probs: Sequence[float]) -> np.ndarray | None:
    """Probabilities rescaled to sum to exactly 1 (the release stores rounded values); ``None`` if empty."""
    p = np.asarray(probs, dtype=float)
    total = float(p.sum())
    if p.size == 0 or total <= 0 or not np.all(np.isfinite(p)) or np.any(p < 0):
        return None
    return p / total
