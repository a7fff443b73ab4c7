"""The provider batch clients and which models may use them.

OpenAI goes through litellm's batch functions (``create_file`` / ``create_batch`` / ``retrieve_batch`` /
``file_content`` / ``cancel_batch``), which cover OpenAI and any OpenAI-compatible server with the Files and
Batches API. Anthropic goes through the official ``anthropic`` SDK (``client.messages.batches``): litellm's
Anthropic batch path expects an OpenAI-format file uploaded through its proxy's managed files and cannot
download Anthropic's results, while the SDK speaks the Message Batches API as it is.
"""

from __future__ import annotations

from distalign.engines.batch.anthropic_batches import AnthropicBatches
from distalign.engines.batch.base import (
    BATCH_PROVIDERS,
    BatchClient,
    BatchError,
    check_batch_serving,
    is_batch,
)
from distalign.engines.batch.lines import LineCodec
from distalign.engines.batch.openai_batches import OpenAIBatches
from distalign.engines.batch.prices import BatchPrice, batch_price
from distalign.engines.providers import bundled_prices
from distalign.errors import InputError
from distalign.records.config import ModelConfig

__all__ = [
    "BATCH_PROVIDERS",
    "BatchClient",
    "BatchError",
    "batch_client",
    "check_batch_serving",
    "model_batch_price",
]


def model_batch_price(model: ModelConfig) -> BatchPrice | None:
    s = model.serving
    configured = s.input_cost_per_token is not None or s.output_cost_per_token is not None
    sync = (
        (s.input_cost_per_token or 0.0, s.output_cost_per_token or 0.0)
        if configured
        else bundled_prices(model.weights)
    )
    return batch_price(model.weights, sync, configured)


def batch_client(model: ModelConfig) -> BatchClient:
    """The batch client of a model in batch mode."""
    from distalign.engines.registry import model_identity

    if not is_batch(model):
        raise InputError(
            "not in batch mode (serving.mode=batch)", where=f"model {model.name!r}: serving.mode"
        )
    check_batch_serving(model)
    codec = LineCodec(
        model_identity(model), dict(model.serving.capabilities) or None, model_batch_price(model)
    )
    if codec.provider == "anthropic":
        return AnthropicBatches(model, codec)
    return OpenAIBatches(model, codec)
