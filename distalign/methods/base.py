"""The elicitation-method protocol and the request plumbing the methods share.

A method turns one rendered prompt into engine requests and the engine's results back into a distribution.
Every sampling setting is written into the request (nothing is left to engine defaults), because the
request is also the response-store key: two runs that differ in a setting must never share answers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Protocol, runtime_checkable

from distalign.errors import InputError
from distalign.methods.parsed import Parsed
from distalign.prompts.render import RenderedPrompt
from distalign.records.engine import (
    Capabilities,
    CapabilityError,
    GenerateRequest,
    GenerateResult,
    Message,
    OptionLogprobRequest,
    OptionLogprobResult,
    SamplingParams,
)

Request = OptionLogprobRequest | GenerateRequest
Result = OptionLogprobResult | GenerateResult


@runtime_checkable
class Method(Protocol):
    name: str
    #: the prompt format it needs in the benchmark protocol (see ``formats`` for the others)
    fmt: str
    #: protocol -> prompt format; a protocol missing here cannot serve this method
    formats: Mapping[str, str]

    def requests(self, prompt: RenderedPrompt, capabilities: Capabilities | None = None) -> list[Request]: ...

    def parse(self, prompt: RenderedPrompt, results: Sequence[Result]) -> Parsed: ...


def format_for(method: Method, protocol: str) -> str:
    """The prompt format a method needs under a protocol, or an InputError saying which exist."""
    try:
        return method.formats[protocol]
    except KeyError:
        known = ", ".join(method.formats)
        raise InputError(
            f"method {method.name!r} is not available in the {protocol} protocol (it is in: {known})",
            where="method",
        ) from None


def sample_requests(
    messages: tuple[Message, ...],
    params: SamplingParams,
    assistant_prefix: str,
    capabilities: Capabilities | None,
) -> list[GenerateRequest]:
    """One request with ``n`` samples, or ``n`` single-sample requests with distinct ``sample_index`` (and
    seeds) when the engine cannot return several samples per request."""
    caps = capabilities or Capabilities()
    if not caps.generate:
        raise CapabilityError("the engine cannot generate text")
    if not caps.seed:
        params = replace(params, seed=None)
    if params.allowed is not None and not caps.allowed_tokens:
        params = replace(params, allowed=None)
    if params.n == 1 or caps.n_samples:
        return [GenerateRequest(messages, params, assistant_prefix, 0)]
    return [
        GenerateRequest(
            messages,
            replace(params, n=1, seed=None if params.seed is None else params.seed + i),
            assistant_prefix,
            sample_index=i,
        )
        for i in range(params.n)
    ]


def generated_texts(results: Sequence[Result]) -> tuple[list[str], list[str]]:
    """All generated texts across results, and the error messages of failed ones."""
    texts: list[str] = []
    errors: list[str] = []
    for r in results:
        if not isinstance(r, GenerateResult):
            errors.append(f"expected a generation, got {type(r).__name__}")
        elif r.error is not None:
            errors.append(r.error)
        else:
            texts.extend(r.texts)
    return texts, errors


def with_errors(parsed: Parsed, errors: Sequence[str], n_expected: int) -> Parsed:
    """Account failed requests in ``n_total`` and the detail (a failed request is data, not an exception)."""
    if not errors:
        return parsed
    note = f"{len(errors)} request(s) failed: {errors[0]}"
    detail = f"{parsed.detail}; {note}" if parsed.detail else note
    if parsed.status == "unparsed":
        return Parsed.unparsed(detail, n_total=max(parsed.n_total, n_expected))
    return Parsed(parsed.probs, "partial", detail, max(parsed.n_total, n_expected), parsed.n_valid)


def check_positive(**values: float) -> None:
    for key, value in values.items():
        if value is None or value <= 0:
            raise InputError(f"must be > 0 (got {value!r})", where=f"method parameter {key!r}")
