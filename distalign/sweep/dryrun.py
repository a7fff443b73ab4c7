"""The dry run: what a sweep would send and roughly what it would cost, with no model call and no Ray."""

from __future__ import annotations

from collections.abc import Sequence

from distalign.records.config import CellConfig
from distalign.sweep.cells import as_cell
from distalign.sweep.plan import Plan, build_plan
from distalign.sweep.validate import validate_cells


def describe_plan(plan: Plan) -> str:
    counts = plan.counts()
    est = plan.estimate()
    saved = counts["requests_before_dedup"] - counts["requests"]
    lines = [
        f"cells: {counts['cells']} ({counts['cells_failed']} failed to plan)",
        f"prompts (units): {counts['units']}",
        f"requests: {counts['requests']} after de-duplication "
        f"({counts['requests_before_dedup']} before, {saved} saved)",
        "",
        f"{'model':<24} {'cells':>6} {'requests':>9} {'prompt tok':>11} {'output tok':>11} "
        f"{'cost (USD)':>11}",
    ]
    total_cost: float | None = 0.0
    for model, m in counts["per_model"].items():
        e = est.get(model, {"prompt_tokens": 0, "completion_tokens": 0, "cost_usd": 0.0})
        cost = e.get("cost_usd")
        total_cost = None if cost is None or total_cost is None else total_cost + cost
        cost_s = "unknown" if cost is None else f"{cost:.4f}"
        lines.append(
            f"{model:<24} {m['cells']:>6} {m['unique']:>9} {int(e['prompt_tokens'] or 0):>11} "
            f"{int(e['completion_tokens'] or 0):>11} {cost_s:>11}"
        )
    lines.append("")
    lines.append(
        "estimated cost: "
        + (
            "unknown (set serving.input_cost_per_token / output_cost_per_token)"
            if total_cost is None
            else f"${total_cost:.4f}"
        )
        + "  (tokens estimated at 4 characters each; output at max_tokens)"
    )
    for _, shash, error in plan.failed:
        lines.append(f"FAILED {shash}: {error}")
    return "\n".join(lines)


def dry_run(cells: Sequence[CellConfig]) -> str:
    """Validate and plan a grid, and describe it. No model is called, so API keys need not be set yet."""
    cs = [as_cell(c) for c in cells]
    validate_cells(cs, require_keys=False)
    return describe_plan(build_plan(cs))
