"""Anthropic's Message Batches API through the official SDK (see ``clients`` for why not litellm)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

from distalign.engines.batch.base import (
    BATCH_PROVIDERS,
    BatchError,
    BatchState,
    Request,
    Result,
    api_key,
    as_dict,
    error_result,
    reason_of,
    settings_of,
)
from distalign.engines.batch.lines import LineCodec
from distalign.records.config import ModelConfig


class AnthropicBatches:
    provider = "anthropic"

    def __init__(self, model: ModelConfig, codec: LineCodec) -> None:
        self.model, self.codec = model, codec
        self.max_requests, self.max_bytes = BATCH_PROVIDERS["anthropic"]

    def _client(self) -> Any:
        import anthropic

        base = settings_of(self.model).api_base
        if base is not None:
            base = base.rstrip("/")
            base = base[: -len("/v1")] if base.endswith("/v1") else base  # the SDK adds /v1 itself
        return anthropic.Anthropic(api_key=api_key(self.model) or "unset", base_url=base, max_retries=4)

    def line(self, key: str, request: Request) -> bytes:
        return self.codec.anthropic_line(key, request)

    def submit(self, lines: Sequence[bytes]) -> str:
        try:
            batch = self._client().messages.batches.create(requests=[json.loads(line) for line in lines])
        except Exception as exc:  # noqa: BLE001 - the provider's reason, in one line
            raise BatchError(f"Anthropic refused the batch: {reason_of(exc, self.model)}") from None
        return str(batch.id)

    def state(self, batch_id: str) -> BatchState:
        b = as_dict(self._client().messages.batches.retrieve(batch_id))
        status = str(b.get("processing_status"))
        counts = {k: int(v or 0) for k, v in (b.get("request_counts") or {}).items()}
        if status == "ended":
            return BatchState("ended", status, counts=counts)
        return BatchState("in_progress", status, counts=counts)

    def results(
        self, batch_id: str, requests: dict[str, Request]
    ) -> Iterator[tuple[str, Result | None, str]]:
        for entry in self._client().messages.batches.results(batch_id):
            e = as_dict(entry)
            key = str(e.get("custom_id"))
            request = requests.get(key)
            if request is None:
                continue
            result = e.get("result") or {}
            kind = result.get("type")
            if kind == "succeeded":
                yield key, self.codec.from_message(request, result.get("message") or {}), "ok"
            elif kind == "errored":
                err = (result.get("error") or {}).get("error") or result.get("error") or {}
                reason = f"{err.get('type', 'error')}: {err.get('message', '')}".strip()
                if err.get("type") == "invalid_request_error":  # fails the same way when re-sent
                    yield key, error_result(request, f"client_error: {reason}"), reason
                else:
                    yield key, None, reason
            else:  # canceled | expired
                yield key, None, str(kind)

    def cancel(self, batch_id: str) -> None:
        self._client().messages.batches.cancel(batch_id)
