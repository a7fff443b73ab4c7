"""What every provider batch client shares: its interface, its states, its errors, the key lookup.

The choice of client per provider (and why) is in ``clients``.

The API key is read from the environment for each call and handed to the client only; it is never kept on
a client object, in a batch line or in the ledger.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from distalign.engines.providers import provider_of
from distalign.errors import InputError
from distalign.records.config import ModelConfig
from distalign.records.engine import (
    GenerateRequest,
    GenerateResult,
    OptionLogprobRequest,
    OptionLogprobResult,
)

Request = OptionLogprobRequest | GenerateRequest
Result = OptionLogprobResult | GenerateResult

#: litellm provider -> (max requests, max bytes) of one batch
BATCH_PROVIDERS: dict[str, tuple[int, int]] = {
    "openai": (50_000, 200 * 1024 * 1024),
    "anthropic": (100_000, 256 * 1024 * 1024),
}


def error_result(request: Request, message: str) -> Result:
    """A final failure as data (counted in the extraction rate like any failed request)."""
    if isinstance(request, OptionLogprobRequest):
        return OptionLogprobResult(error=message)
    return GenerateResult(error=message)


class BatchError(RuntimeError):
    """A provider refused or failed a whole batch; the message is the provider's reason."""


class BatchLookupError(RuntimeError):
    """The provider could not say whether it holds a batch (its listing failed or ran past the bound): the
    caller keeps the intent and asks again later rather than sending its requests a second time."""


#: metadata key of the token that ties an OpenAI batch to its ledger intent
TOKEN_KEY = "distalign_token"
#: how far a provider's clock may trail ours when matching a batch to the time of its intent
CLOCK_SKEW_S = 300.0
#: pages of 100 batches a lookup reads at most, newest first, before giving up undecided
MAX_LIST_PAGES = 20


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
    codec: Any  # lines.LineCodec (not imported here: it loads litellm)

    def line(self, key: str, request: Request) -> bytes: ...

    def submit(self, lines: Sequence[bytes], token: str) -> str:
        """The id of the new batch; ``token`` goes into its metadata where the provider keeps metadata."""
        ...

    def find(self, token: str, since: float, lines: int, known: set[str]) -> str | None:
        """The id of the batch an intent (``token``, written at ``since``, of ``lines`` lines) became, or
        None when the provider holds none; BatchLookupError when it cannot tell. ``known``: ids already in
        the ledger (never the answer)."""
        ...

    def state(self, batch_id: str) -> BatchState: ...

    def results(
        self, batch_id: str, requests: dict[str, Request]
    ) -> Iterator[tuple[str, Result | None, str]]:
        """(key, result or None when the line failed and may be re-sent, reason) per line answered."""
        ...

    def cancel(self, batch_id: str) -> None: ...


def settings_of(model: ModelConfig) -> Any:
    """The model's engine settings, typed (api_base, api_key_env, mode, batch_poll_s, batch_retries)."""
    from distalign.engines.registry import engine_settings

    return engine_settings(model)


def is_batch(model: ModelConfig) -> bool:
    """Whether the model's engine declares batch mode for this config (``model.serving.mode=batch``)."""
    from distalign.engines.registry import engine_settings, engine_spec

    return engine_spec(model).batch(model, engine_settings(model))


def check_batch_serving(model: ModelConfig) -> None:
    """Batch mode is for models of a provider with a batch API (InputError otherwise); the litellm engine
    calls this when its settings say ``mode: batch``."""
    provider = provider_of(model.weights)
    if provider not in BATCH_PROVIDERS:
        raise InputError(
            f"provider {provider!r} has no batch API here; batch mode supports {', '.join(BATCH_PROVIDERS)} "
            "(an OpenAI-compatible server with the Files and Batches API: 'openai/...' with api_base)",
            where=f"model {model.name!r}: serving.mode",
        )


def api_key(model: ModelConfig) -> str | None:
    env = settings_of(model).api_key_env
    if not env:
        return None
    key = os.environ.get(env)
    if not key:
        raise InputError(
            f"environment variable {env} is not set", where=f"model {model.name!r}: serving.api_key_env"
        )
    return key


def reason_of(exc: BaseException, model: ModelConfig) -> str:
    """A provider error as one line, with the key (if it appears) masked."""
    message = " ".join(str(exc).split())[:400] or type(exc).__name__
    env = settings_of(model).api_key_env
    key = os.environ.get(env) if env else None
    return message.replace(key, "***") if key else message


def as_dict(obj: Any) -> dict[str, Any]:
    if isinstance(obj, dict):
        return obj
    for name in ("model_dump", "dict"):
        method = getattr(obj, name, None)
        if callable(method):
            return method()
    return dict(vars(obj))
