"""Requests -> provider batch lines, and result lines -> results: the same request bodies, capability
checks and parsing as the synchronous litellm engine, so a grid gives the same numbers either way.

Every line's ``custom_id`` is the request's store key (a 64-character hex sha256: within Anthropic's
64-character ``[a-zA-Z0-9_-]`` limit), so a result maps back to the store without any other state.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from distalign.engines.batch.base import Request, Result, error_result
from distalign.engines.batch.prices import BatchPrice
from distalign.engines.litellm_engine import TOP_LOGPROBS, LiteLLMEngine, match_candidates
from distalign.engines.providers import require
from distalign.records.engine import (
    GenerateResult,
    ModelIdentity,
    OptionLogprobRequest,
    OptionLogprobResult,
    Usage,
)


class LineCodec:
    """Builds the request body of one provider and reads its answers. ``engine`` is a (never called)
    synchronous engine of the same model: its message building and parsing are reused as they are."""

    def __init__(
        self, identity: ModelIdentity, capabilities: Mapping[str, Any] | None, price: BatchPrice | None
    ):
        self.engine = LiteLLMEngine(identity, capabilities=capabilities)
        self.provider = self.engine.provider
        self.model = identity.weights.split("/", 1)[1] if "/" in identity.weights else identity.weights
        self.price = price

    def check(self, request: Request) -> None:
        """The synchronous engine's capability check (log-probs from Anthropic, ``n`` where unsupported)."""
        caps, weights = self.engine.capabilities, self.engine.identity.weights
        if isinstance(request, OptionLogprobRequest):
            require(weights, caps, option_logprobs=True)
        else:
            p = request.params
            require(
                weights,
                caps,
                n=p.n,
                seed=p.seed is not None,
                allowed_tokens=p.allowed is not None or p.min_tokens > 0,
            )

    # --- request bodies -----------------------------------------------------------------------------
    def chat_body(self, request: Request) -> dict[str, Any]:
        """An OpenAI chat-completions body, as the synchronous engine would send it."""
        self.check(request)
        messages, extra = self.engine._messages(request.messages, request.assistant_prefix)  # noqa: SLF001
        body: dict[str, Any] = {"model": self.model, "messages": messages}
        if isinstance(request, OptionLogprobRequest):
            body.update(max_tokens=1, temperature=0.0, logprobs=True, top_logprobs=TOP_LOGPROBS)
        else:
            p = request.params
            body.update(temperature=p.temperature, top_p=p.top_p, max_tokens=p.max_tokens)
            if self.engine.capabilities.n_samples:
                body["n"] = p.n
            if p.stop:
                body["stop"] = list(p.stop)
            if p.seed is not None:
                body["seed"] = p.seed
            if p.min_tokens > 0:
                extra["min_tokens"] = p.min_tokens
        body.update(extra)
        return body

    def openai_line(self, key: str, request: Request) -> bytes:
        line = {
            "custom_id": key,
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": self.chat_body(request),
        }
        return json.dumps(line, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"

    def anthropic_line(self, key: str, request: Request) -> bytes:
        """``{"custom_id", "params"}`` of Anthropic's Message Batches: system messages go to ``system``."""
        body = self.chat_body(request)
        system = [m["content"] for m in body["messages"] if m["role"] == "system"]
        params: dict[str, Any] = {
            "model": self.model,
            "max_tokens": body["max_tokens"],
            "messages": [m for m in body["messages"] if m["role"] != "system"],
            "temperature": body["temperature"],
        }
        if system:
            params["system"] = "\n".join(system)
        if "stop" in body:
            params["stop_sequences"] = body["stop"]
        line = {"custom_id": key, "params": params}
        return json.dumps(line, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"

    # --- answers ------------------------------------------------------------------------------------
    def _usage(self, prompt: int, completion: int) -> Usage:
        cost = (
            0.0
            if self.price is None
            else prompt * self.price.input_per_token + completion * self.price.output_per_token
        )
        return Usage(prompt_tokens=prompt, completion_tokens=completion, cost_usd=cost)

    def from_completion(self, request: Request, body: Mapping[str, Any]) -> Result:
        """A chat completion (an OpenAI batch line's response body) -> a result; a malformed one is a final
        error result, as in the synchronous engine."""
        usage = body.get("usage") or {}
        u = self._usage(int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0))
        try:
            if isinstance(request, OptionLogprobRequest):
                top = LiteLLMEngine._top_logprobs(body)  # noqa: SLF001
                return OptionLogprobResult(logprobs=match_candidates(top, request.candidates), usage=u)
            n = request.params.n if self.engine.capabilities.n_samples else 1
            return GenerateResult(texts=LiteLLMEngine._texts(body, n), usage=u)  # noqa: SLF001
        except Exception as exc:  # noqa: BLE001 - errors are data
            return error_result(request, f"malformed: {exc}")

    def from_message(self, request: Request, message: Mapping[str, Any]) -> Result:
        """An Anthropic message -> a result (generation only: Anthropic returns no log-probs)."""
        usage = message.get("usage") or {}
        u = self._usage(int(usage.get("input_tokens") or 0), int(usage.get("output_tokens") or 0))
        text = "".join(
            str(b.get("text", "")) for b in message.get("content") or [] if b.get("type") == "text"
        )
        if isinstance(request, OptionLogprobRequest):
            return error_result(request, "malformed: Anthropic returns no log-probs")
        return GenerateResult(texts=(text,), usage=u)
