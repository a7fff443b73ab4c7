"""The dry run: what a sweep would send and roughly what it would cost, with no model call and no Ray."""

from __future__ import annotations

from distalign.sweep.plan import PlanSummary

PRICE_HINT = "set model.serving.input_cost_per_token / output_cost_per_token to price it"


def _usd(value: float) -> str:
    """Fewer decimals the larger the sum ($292.6, $85.85, $0.0123)."""
    if value >= 100:
        return f"${value:,.1f}"
    return f"${value:.2f}" if value >= 1 else f"${value:.4f}"


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


def batch_prices(summary: PlanSummary) -> list[str]:
    """One line per API model: its synchronous and its batch price (``serving.mode`` says which is used)."""
    from distalign.engines.batch.base import is_batch
    from distalign.engines.batch.clients import model_batch_price  # imports litellm: API models only
    from distalign.engines.registry import pool_traits

    lines = []
    for model, m in summary.per_model.items():
        config = summary.models[model]
        if not pool_traits(config).api:
            continue
        sync = summary.cost(model)
        price = model_batch_price(config)
        batch = (
            None
            if price is None
            else m.prompt_tokens * price.input_per_token + m.completion_tokens * price.output_per_token
        )
        note = " (estimate: half the sync price)" if price is not None and price.estimated else ""
        used = "batch" if is_batch(config) else "sync"
        lines.append(
            f"{model}: sync {'unknown' if sync is None else _usd(sync)} | batch "
            f"{'unknown' if batch is None else _usd(batch)}{note} | this sweep uses {used}"
        )
    return lines


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
    prices = batch_prices(summary)
    if prices:
        lines += ["", "price per API model (synchronous API vs provider batch API):", *prices]
    for name, shash, error in summary.failed:
        lines.append(f"FAILED {name} {shash}: {error}")
    return "\n".join(lines)
