"""The dry run: what a sweep would send and roughly what it would cost, with no model call and no Ray."""

from __future__ import annotations

from distalign.sweep.plan import PlanSummary

PRICE_HINT = "set model.serving.input_cost_per_token / output_cost_per_token to price it"


def _usd(value: float) -> str:
    """Four significant decimals for cents, fewer for large sums ($292.6, $0.0123)."""
    return f"${value:,.1f}" if value >= 100 else f"${value:.4f}"


def cost_line(summary: PlanSummary) -> str:
    """The grid's known cost, naming the models it covers and those without a price (never "unknown" for
    the whole grid because one model has no price)."""
    priced = {m: c for m in summary.per_model if (c := summary.cost(m)) is not None}
    unpriced = [m for m in summary.per_model if m not in priced]
    note = "  (tokens estimated at 4 characters each; output at max_tokens)"
    if not unpriced:
        return f"estimated cost: {_usd(sum(priced.values()))}{note}"
    if not priced:
        return f"estimated cost: unknown: no price for {', '.join(unpriced)} ({PRICE_HINT}){note}"
    return (
        f"estimated cost: {_usd(sum(priced.values()))} for {', '.join(priced)}, plus "
        f"{', '.join(unpriced)} with no price ({PRICE_HINT}){note}"
    )


def describe(summary: PlanSummary) -> str:
    saved = summary.requests_before_dedup - summary.requests
    lines = [
        f"cells: {summary.cells + len(summary.failed)} ({len(summary.failed)} failed to plan)",
        f"prompts (units): {summary.units}",
        f"requests: {summary.requests} after de-duplication "
        f"({summary.requests_before_dedup} before, {saved} saved)",
        "",
        f"{'model':<24} {'cells':>6} {'requests':>9} {'prompt tok':>11} {'output tok':>11} "
        f"{'cost (USD)':>11}",
    ]
    for model, m in summary.per_model.items():
        cost = summary.cost(model)
        cost_s = "no price" if cost is None else f"{cost:.4f}"
        lines.append(
            f"{model:<24} {m.cells:>6} {m.unique:>9} {m.prompt_tokens:>11} "
            f"{m.completion_tokens:>11} {cost_s:>11}"
        )
    lines.append("")
    lines.append(cost_line(summary))
    for name, shash, error in summary.failed:
        lines.append(f"FAILED {name} {shash}: {error}")
    return "\n".join(lines)
