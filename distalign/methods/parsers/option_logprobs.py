"""Next-token log-probabilities of the option letters turned into a distribution.

APIs and engines return log-probs for the candidates they saw; a candidate missing from the returned
top-k is made explicit (probability 0, status ``partial``) rather than silently renormalised away.
The raw coverage (total probability the candidates had before renormalisation) tells how much mass
went to other tokens (vLLM's ``logprob_token_ids`` returned as little as 6%).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from distalign.methods.parsed import Parsed


def _clean(logprobs: object) -> list[float | None]:
    """Finite floats or -inf; anything else (None, NaN, +inf, text) is missing."""
    if not isinstance(logprobs, Sequence) or isinstance(logprobs, str | bytes):
        return []
    out: list[float | None] = []
    for v in logprobs:
        if isinstance(v, bool) or not isinstance(v, int | float):
            out.append(None)
            continue
        x = float(v)
        out.append(x if (math.isfinite(x) or x == -math.inf) and x <= 1e-6 else None)
    return out


def logprob_coverage(logprobs: Sequence[float | None]) -> float:
    """Sum of exp(log-prob) over the candidates present: the mass the options had before renormalising."""
    present = [x for x in _clean(logprobs) if x is not None]
    finite = [x for x in present if x != -math.inf]
    if not finite:
        return 0.0
    top = max(finite)  # log-sum-exp around the largest term, as scipy's logsumexp does
    total = top + math.log(math.fsum(math.exp(x - top) for x in finite))
    return float(math.exp(min(0.0, total)))


def logprobs_to_distribution(
    logprobs: Sequence[float | None], letters: Sequence[str] | None = None
) -> Parsed:
    """Softmax over the candidates present, in option order; missing candidates get 0. Never raises.
    ``letters`` name the candidates in the detail (default A, B, ...; "1", "2", ... for index answers).

    Plain Python over the handful of options: a sweep parses one per prompt, and numpy's per-call
    overhead on arrays this small is most of the cost."""
    values = _clean(logprobs)
    if not values:
        return Parsed.unparsed("no candidate log-probs")
    names = list(letters) if letters is not None and len(letters) == len(values) else None
    missing = [
        str(names[i]) if names else chr(ord("A") + i) if i < 26 else str(i)
        for i, x in enumerate(values)
        if x is None
    ]
    finite = [x for x in values if x is not None and x != -math.inf]
    if not finite:
        present = len(missing) < len(values)
        return Parsed.unparsed("all candidates have zero mass" if present else "all candidates missing")
    top = max(finite)  # softmax shifted by the largest term, as scipy's does
    weights = [0.0 if x is None or x == -math.inf else math.exp(x - top) for x in values]
    total = math.fsum(weights)
    probs = np.array(weights) / total
    detail = f"coverage {logprob_coverage(values):.4g}"
    if missing:
        detail += f"; missing: {', '.join(missing)}"
    return Parsed(probs=probs, status="partial" if missing else "ok", detail=detail)
