"""The parent run's metrics describe the whole sweep, over every attempt (first run, resumes, reruns).

A rerun adds what it did to what earlier attempts recorded, so it never lowers a total: a rerun of a
finished sweep sends nothing and leaves ``requests`` and ``wall_time_s`` as they were. What one attempt did
on its own is kept under ``attempt.*``, logged at step = the attempt number (MLflow keeps each step).
"""

from __future__ import annotations

from collections.abc import Mapping

#: summed over attempts (work done); everything else describes the sweep's state now
ADDITIVE = (
    "requests_before_dedup",
    "requests",
    "requests_sent",
    "cache_hits",
    "validate_s",
    "plan_s",
    "parse_score_s",
    "engine_time_s",
    "wall_time_s",
)
ATTEMPT = "attempt."


def sweep_metrics(
    previous: Mapping[str, float], attempt: Mapping[str, float], finished: int, failed: int
) -> tuple[int, dict[str, float]]:
    """(attempt number, the parent's metrics): whole-sweep totals plus this attempt's own ``attempt.*``.

    ``finished`` counts the sweep's finished cells now (including those of earlier attempts), ``failed``
    the cells that failed in this attempt. An attempt that ran no cell adds nothing to the totals."""
    before = int(previous.get("attempts", 1 if previous else 0))
    step = before + 1
    ran = attempt.get("cells", 0) - attempt.get("skipped", 0)
    out = {k: float(previous.get(k, 0.0)) + (float(attempt.get(k, 0.0)) if ran else 0.0) for k in ADDITIVE}
    out.update(
        cells=float(attempt.get("cells", previous.get("cells", 0.0))),
        unsupported=float(attempt.get("unsupported", 0.0)),
        finished=float(finished),
        failed=float(failed),
        attempts=float(step),
    )
    out.update({f"{ATTEMPT}{k}": float(v) for k, v in attempt.items() if isinstance(v, int | float)})
    return step, out
