"""Anthropic's Message Batches API through the official SDK (see ``clients`` for why not litellm)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from distalign.engines.batch.base import (
    BATCH_PROVIDERS,
    CLOCK_SKEW_S,
    MAX_LIST_PAGES,
    BatchError,
    BatchLookupError,
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

    def submit(self, lines: Sequence[bytes], token: str) -> str:  # noqa: ARG002 - no metadata to carry it
        try:
            batch = self._client().messages.batches.create(requests=[json.loads(line) for line in lines])
        except Exception as exc:  # noqa: BLE001 - the provider's reason, in one line
            raise BatchError(f"Anthropic refused the batch: {reason_of(exc, self.model)}") from None
        return str(batch.id)

    def find(self, token: str, since: float, lines: int, known: set[str]) -> str | None:  # noqa: ARG002
        """Message Batches carry no metadata: the earliest batch created at or after the intent (less the
        clock skew) with as many requests as the intent and not already in the ledger. Results are keyed by
        ``custom_id`` (the store key), so adopting a batch that turns out to be someone else's can only
        supply correct answers; the keys it does not answer are re-submitted like any unanswered line."""
        client = self._client()
        found: list[tuple[float, str]] = []
        after: str | None = None
        for _ in range(MAX_LIST_PAGES):
            try:
                page = client.messages.batches.list(limit=100, **({"after_id": after} if after else {}))
            except Exception as exc:  # noqa: BLE001 - the provider's reason, in one line
                raise BatchLookupError(
                    f"Anthropic did not list its batches: {reason_of(exc, self.model)}"
                ) from None
            data = [as_dict(b) for b in page.data]
            created = [_seconds(b.get("created_at")) for b in data]
            for b, t in zip(data, created, strict=True):
                total = sum(int(v or 0) for v in (b.get("request_counts") or {}).values())
                if t >= since - CLOCK_SKEW_S and total == lines and str(b.get("id")) not in known:
                    found.append((t, str(b["id"])))
            if not data or not page.has_more or min(created) < since - CLOCK_SKEW_S:
                return min(found)[1] if found else None
            after = str(data[-1]["id"])
        raise BatchLookupError(
            f"Anthropic listed {MAX_LIST_PAGES * 100} batches newer than the submission without reaching it"
        )

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
        # keep the SDK client referenced while its stream is read: a client is freed by the cycle collector,
        # whose finaliser closes its HTTP connections, possibly mid-stream
        client = self._client()
        for entry in client.messages.batches.results(batch_id):
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


def _seconds(value: Any) -> float:
    """A listing's ``created_at`` (a datetime from the SDK, or an ISO string) in seconds since the epoch."""
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, str):
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    return 0.0
