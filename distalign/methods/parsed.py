"""The outcome of parsing model output into a distribution. Parsers never raise on model text:
an answer that cannot be read is a ``Parsed`` with status ``unparsed`` and counts against the
extraction rate."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

Status = Literal["ok", "partial", "unparsed"]


@dataclass(frozen=True)
class Parsed:
    """A distribution over the options *in the order they were shown* (letters A, B, ...).

    ``partial``: some generations or option tokens were missing but a distribution could still be formed
    (e.g. 2 of 3 verbalized answers parsed, or an option letter absent from the returned log-probs).
    """

    probs: np.ndarray | None
    status: Status
    detail: str = ""
    n_total: int = 1
    n_valid: int = 1

    def __post_init__(self) -> None:
        if self.status == "unparsed":
            if self.probs is not None:
                raise ValueError("an unparsed answer carries no distribution")
            return
        if self.probs is None:
            raise ValueError(f"status {self.status!r} needs a distribution")
        p = np.asarray(self.probs, dtype=float)
        # two reductions instead of a chain of element-wise checks (a sweep builds one per prompt): a NaN
        # fails ``min() >= 0``; an infinity left after it makes the sum non-finite
        ok = p.ndim == 1 and p.size > 0 and p.min() >= 0
        if not (ok and math.isfinite(total := float(p.sum())) and abs(total - 1.0) <= 1.1e-5):
            raise ValueError(f"not a distribution: {p.tolist()}")
        p.setflags(write=False)
        object.__setattr__(self, "probs", p)

    @property
    def extracted(self) -> bool:
        return self.status != "unparsed"

    @classmethod
    def unparsed(cls, detail: str, n_total: int = 1) -> Parsed:
        return cls(probs=None, status="unparsed", detail=detail, n_total=n_total, n_valid=0)
