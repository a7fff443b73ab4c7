"""OpenAI's Batch API (and any OpenAI-compatible server with Files + Batches) through litellm's batch
functions: upload a JSONL file, create a batch over it, poll, download the output and error files."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from typing import Any

from distalign.engines.batch.base import (
    BATCH_PROVIDERS,
    CLOCK_SKEW_S,
    MAX_LIST_PAGES,
    TOKEN_KEY,
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

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # never fetch the cost map at run time

_RUNNING = {"validating", "in_progress", "finalizing", "cancelling"}
_ENDED = {"completed", "expired", "cancelled"}


class OpenAIBatches:
    provider = "openai"

    def __init__(self, model: ModelConfig, codec: LineCodec) -> None:

        self.model, self.codec = model, codec
        self.max_requests, self.max_bytes = BATCH_PROVIDERS["openai"]

    def _kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"custom_llm_provider": "openai"}
        api_base = settings_of(self.model).api_base
        if api_base:
            kwargs["api_base"] = api_base
        key = api_key(self.model)
        if key is not None:
            kwargs["api_key"] = key
        return kwargs

    def line(self, key: str, request: Request) -> bytes:
        return self.codec.openai_line(key, request)

    def submit(self, lines: Sequence[bytes], token: str) -> str:
        import litellm

        try:
            f = litellm.create_file(file=("batch.jsonl", b"".join(lines)), purpose="batch", **self._kwargs())
            batch = litellm.create_batch(
                completion_window="24h",
                endpoint="/v1/chat/completions",
                input_file_id=f.id,
                metadata={TOKEN_KEY: token},
                **self._kwargs(),
            )
        except Exception as exc:  # noqa: BLE001 - the provider's reason, in one line
            raise BatchError(f"OpenAI refused the batch: {reason_of(exc, self.model)}") from None
        return str(batch.id)

    def find(self, token: str, since: float, lines: int, known: set[str]) -> str | None:
        """The batch whose metadata carries ``token``, reading the listing (newest first) back to ``since``
        (less the clock skew), at most ``MAX_LIST_PAGES`` pages."""
        import litellm

        after: str | None = None
        for _ in range(MAX_LIST_PAGES):
            page_kw = {"after": after} if after else {}
            try:
                page = litellm.list_batches(limit=100, **page_kw, **self._kwargs())
            except Exception as exc:  # noqa: BLE001 - the provider's reason, in one line
                raise BatchLookupError(
                    f"OpenAI did not list its batches: {reason_of(exc, self.model)}"
                ) from None
            data = [as_dict(b) for b in getattr(page, "data", None) or []]
            for b in data:
                if (b.get("metadata") or {}).get(TOKEN_KEY) == token and str(b.get("id")) not in known:
                    return str(b["id"])
            oldest = min((int(b.get("created_at") or 0) for b in data), default=0)
            if not data or not getattr(page, "has_more", False) or oldest < since - CLOCK_SKEW_S:
                return None
            after = str(data[-1]["id"])
        raise BatchLookupError(
            f"OpenAI listed {MAX_LIST_PAGES * 100} batches newer than the submission without reaching it"
        )

    def state(self, batch_id: str) -> BatchState:
        import litellm

        b = as_dict(litellm.retrieve_batch(batch_id=batch_id, **self._kwargs()))
        status = str(b.get("status"))
        counts = {k: int(v or 0) for k, v in (b.get("request_counts") or {}).items()}
        if status in _RUNNING:
            return BatchState("in_progress", status, counts=counts)
        if status in _ENDED:
            return BatchState("ended", status, counts=counts)
        errors = (b.get("errors") or {}).get("data") or []
        reason = "; ".join(str(e.get("message")) for e in errors if isinstance(e, dict)) or f"status {status}"
        return BatchState("failed", status, reason=reason, counts=counts)

    def _file(self, file_id: str | None) -> Iterator[dict[str, Any]]:
        import litellm

        if not file_id:
            return
        content = litellm.file_content(file_id=file_id, **self._kwargs())
        for raw in content.content.splitlines():
            if raw.strip():
                yield json.loads(raw)

    def results(
        self, batch_id: str, requests: dict[str, Request]
    ) -> Iterator[tuple[str, Result | None, str]]:
        import litellm

        b = as_dict(litellm.retrieve_batch(batch_id=batch_id, **self._kwargs()))
        for file_id in (b.get("output_file_id"), b.get("error_file_id")):
            for line in self._file(file_id):
                key = str(line.get("custom_id"))
                request = requests.get(key)
                if request is None:
                    continue
                response = line.get("response") or {}
                error = line.get("error")
                if error or response.get("status_code") != 200:
                    body = response.get("body") or {}
                    message = (error or {}).get("message") or (body.get("error") or {}).get("message")
                    status = response.get("status_code")
                    reason = f"{message or 'failed'}" + (f" (HTTP {status})" if status else "")
                    # a client error (400) fails the same way when re-sent: a final error result
                    if status is not None and 400 <= int(status) < 500 and int(status) not in (408, 409, 429):
                        yield key, error_result(request, f"client_error: {reason}"), reason
                    else:
                        yield key, None, reason
                    continue
                yield key, self.codec.from_completion(request, response.get("body") or {}), "ok"

    def cancel(self, batch_id: str) -> None:
        import litellm

        litellm.cancel_batch(batch_id=batch_id, **self._kwargs())
