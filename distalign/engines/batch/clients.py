"""The provider batch clients behind one small interface, and which models may use them.

OpenAI goes through litellm's batch functions (``create_file`` / ``create_batch`` / ``retrieve_batch`` /
``file_content`` / ``cancel_batch``), which cover OpenAI and any OpenAI-compatible server with the Files and
Batches API. Anthropic goes through the official ``anthropic`` SDK (``client.messages.batches``): litellm's
Anthropic batch path expects an OpenAI-format file uploaded through its proxy's managed files and cannot
download Anthropic's results, while the SDK speaks the Message Batches API as it is.

The API key is read from the environment for each call and handed to the client only; it is never kept on
a client object, in a batch line or in the ledger.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from distalign.engines.batch.lines import LineCodec, Request, Result
from distalign.engines.batch.prices import batch_price
from distalign.engines.providers import bundled_prices, provider_of
from distalign.errors import InputError
from distalign.records.config import ModelConfig

#: litellm provider -> (max requests, max bytes) of one batch
BATCH_PROVIDERS: dict[str, tuple[int, int]] = {
    "openai": (50_000, 200 * 1024 * 1024),
    "anthropic": (100_000, 256 * 1024 * 1024),
}


class BatchError(RuntimeError):
    """A provider refused or failed a whole batch; the message is the provider's reason."""


@dataclass(frozen=True)
class BatchState:
    """``status``: ``in_progress`` (validating, running, finalizing, cancelling), ``ended`` (completed,
    expired or cancelled: read its results; the lines without one are re-submitted) or ``failed`` (the
    whole batch, with the provider's ``reason``)."""

    status: str
    provider_status: str
    reason: str | None = None
    counts: dict[str, int] = field(default_factory=dict)


class BatchClient(Protocol):
    provider: str
    max_requests: int
    max_bytes: int
    codec: LineCodec

    def line(self, key: str, request: Request) -> bytes: ...

    def submit(self, lines: Sequence[bytes]) -> str: ...

    def state(self, batch_id: str) -> BatchState: ...

    def results(self, batch_id: str, requests: dict[str, Request]) -> Iterator[tuple[str, Result | None, str]]:
        """(key, result or None when the line failed and may be re-sent, reason) per line answered."""
        ...

    def cancel(self, batch_id: str) -> None: ...


def api_key(model: ModelConfig) -> str | None:
    env = model.serving.api_key_env
    if not env:
        return None
    key = os.environ.get(env)
    if not key:
        raise InputError(f"environment variable {env} is not set", where=f"model {model.name!r}: serving.api_key_env")
    return key


def check_batch_serving(model: ModelConfig) -> None:
    """Batch mode is for litellm models of a provider with a batch API (InputError otherwise)."""
    where = f"model {model.name!r}: serving.mode"
    if model.serving.engine != "litellm":
        raise InputError(f"batch mode needs an API model (engine litellm), not {model.serving.engine!r}", where=where)
    provider = provider_of(model.weights)
    if provider not in BATCH_PROVIDERS:
        raise InputError(
            f"provider {provider!r} has no batch API here; batch mode supports {', '.join(BATCH_PROVIDERS)} "
            "(an OpenAI-compatible server with the Files and Batches API: 'openai/...' with api_base)",
            where=where,
        )
    if model.serving.batch_poll_s <= 0:
        raise InputError(f"must be positive, got {model.serving.batch_poll_s}", where=f"{where[:-5]}.batch_poll_s")
    if model.serving.batch_retries < 0:
        raise InputError(f"must not be negative, got {model.serving.batch_retries}", where=f"{where[:-5]}.batch_retries")


def model_batch_price(model: ModelConfig):  # noqa: ANN201 - BatchPrice | None
    s = model.serving
    configured = s.input_cost_per_token is not None or s.output_cost_per_token is not None
    sync = (s.input_cost_per_token or 0.0, s.output_cost_per_token or 0.0) if configured else bundled_prices(model.weights)
    return batch_price(model.weights, sync, configured)


def batch_client(model: ModelConfig) -> BatchClient:
    """The batch client of a model in batch mode."""
    from distalign.engines.registry import model_identity

    check_batch_serving(model)
    codec = LineCodec(model_identity(model), dict(model.serving.capabilities) or None, model_batch_price(model))
    if codec.provider == "anthropic":
        from distalign.engines.batch.anthropic_batches import AnthropicBatches

        return AnthropicBatches(model, codec)
    from distalign.engines.batch.openai_batches import OpenAIBatches

    return OpenAIBatches(model, codec)


def reason_of(exc: BaseException, model: ModelConfig) -> str:
    """A provider error as one line, with the key (if it appears) masked."""
    message = " ".join(str(exc).split())[:400] or type(exc).__name__
    key = os.environ.get(model.serving.api_key_env) if model.serving.api_key_env else None
    return message.replace(key, "***") if key else message


def as_dict(obj: Any) -> dict[str, Any]:
    if isinstance(obj, dict):
        return obj
    for name in ("model_dump", "dict"):
        method = getattr(obj, name, None)
        if callable(method):
            return method()
    return dict(vars(obj))
