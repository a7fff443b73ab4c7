"""Extraction rate: the share of model answers from which a distribution could be read."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from distalign.errors import InputError

EXTRACTED = frozenset({"ok", "partial"})
STATUSES = EXTRACTED | {"unparsed"}


def extraction_rate(statuses: Iterable[str]) -> float:
    """Fraction of ``ok`` or ``partial`` statuses; NaN for no answers (no rate, rather than 0 or 1)."""
    s = np.asarray(list(statuses), dtype=object)
    if s.size == 0:
        return float("nan")
    unknown = sorted({str(x) for x in s} - STATUSES)
    if unknown:
        raise InputError(f"unknown parse status {unknown[0]!r} (expected one of {sorted(STATUSES)})")
    return float(np.isin(s, list(EXTRACTED)).mean())
