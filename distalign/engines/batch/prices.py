"""Batch prices: from litellm's cost map (``*_cost_per_token_batches``) where it lists them, else half the
synchronous price, marked as an estimate (both providers' batch APIs are priced at 50% today)."""

from __future__ import annotations

import os
from dataclasses import dataclass

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # never fetch the cost map at run time

BATCH_DISCOUNT = 0.5


@dataclass(frozen=True)
class BatchPrice:
    input_per_token: float
    output_per_token: float
    estimated: bool  # True: half the synchronous price, not a listed batch price


def _entry(model: str) -> dict | None:
    import litellm

    names = [model] + ([model.split("/", 1)[1]] if "/" in model else [])
    for name in names:
        entry = litellm.model_cost.get(name)
        if entry:
            return entry
    return None


def batch_price(model: str, sync: tuple[float, float] | None, configured: bool = False) -> BatchPrice | None:
    """The batch price of litellm model string ``model``. ``sync`` is the (input, output) synchronous price
    per token the sweep uses; ``configured`` says it comes from the model's config (then the batch price is
    half of it: a private price list knows nothing of litellm's map). ``None`` when nothing is known."""
    if not configured:
        entry = _entry(model) or {}
        listed_in = entry.get("input_cost_per_token_batches")
        if listed_in is not None:
            return BatchPrice(
                float(listed_in), float(entry.get("output_cost_per_token_batches") or 0.0), False
            )
    if sync is None:
        return None
    return BatchPrice(sync[0] * BATCH_DISCOUNT, sync[1] * BATCH_DISCOUNT, True)
