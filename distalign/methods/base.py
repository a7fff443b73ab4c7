"""The elicitation-method protocol and the request plumbing the methods share.

A method is the one place that knows everything about its elicitation: the prompt it needs
(``prompt_spec``), the sampling settings of its requests (``requests``) and how an answer becomes a
distribution (``parse_answer``). The sweep parses engine results and ``distalign score`` parses raw texts
from a file through the same ``parse_answer``, so both give identical distributions for identical texts.
Every sampling setting is written into the request (nothing is left to engine defaults), because the
request is also the response-store key: two runs that differ in a setting must never share answers.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, Protocol, runtime_checkable

from distalign.errors import InputError
from distalign.methods.parsed import Parsed
from distalign.prompts.render import PromptSpec, RenderedPrompt
from distalign.records.config import SteeringConfig
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

    def prompt_spec(self, steering: SteeringConfig) -> PromptSpec: ...

    def requests(self, prompt: RenderedPrompt, capabilities: Capabilities | None = None) -> list[Request]: ...

    def parse(self, prompt: RenderedPrompt, results: Sequence[Result]) -> Parsed: ...

    def parse_answer(
        self, answer: Any, letters: Sequence[str], labels: Sequence[str] | None = None
    ) -> Parsed:
        """The pure parse both the sweep and ``distalign score`` use: ``answer`` is the raw text(s) (or,
        for log-probs, the option log-probs in letter order or a letter mapping)."""
        ...


def prompt_spec_for(method: Method, steering: SteeringConfig, seq_len: int = 30) -> PromptSpec:
    """A cell's prompt: protocol, steering and variants from the steering config, the answer format (and,
    for sequences, the number of letters asked for) from the method."""
    try:
        return PromptSpec(
            protocol=steering.protocol,  # type: ignore[arg-type]
            steering=steering.steering,
            fmt=format_for(method, steering.protocol),
            cot=steering.cot,
            few_shot=steering.few_shot,
            n_examples=steering.n_examples,
            seq_len=seq_len,
        )
    except InputError as exc:
        raise InputError(exc.reason, where=f"steering {steering.name!r}: {exc.where}") from exc


class TextMethod:
    """Shared by the methods whose requests generate text: gather the texts of all results, parse them with
    ``parse_answer`` and account failed requests. ``n_answers`` is how many answers the method asks for."""

    n_answers: int = 1

    def prompt_spec(self, steering: SteeringConfig) -> PromptSpec:
        return prompt_spec_for(self, steering)  # type: ignore[arg-type]

    def parse_answer(
        self, answer: Any, letters: Sequence[str], labels: Sequence[str] | None = None
    ) -> Parsed:
        """The raw answer as texts, read by the method's ``parse_texts``."""
        texts = as_texts(answer)
        if not texts:
            return Parsed.unparsed("no generation", n_total=self.n_answers)
        return self.parse_texts(texts, letters, labels)  # type: ignore[attr-defined]

    def parse(self, prompt: RenderedPrompt, results: Sequence[Result]) -> Parsed:
        texts, errors = generated_texts(results)
        n = self.n_answers
        if not texts:
            return with_errors(Parsed.unparsed("no generation", n_total=n), errors, n)
        parsed = self.parse_answer(texts, prompt.letters, prompt.labels)
        return with_errors(parsed, errors, n)


def as_texts(answer: Any) -> list[str]:
    """A raw answer as a list of texts: one text, a list of texts, or JSON text of a list of texts."""
    if isinstance(answer, str):
        stripped = answer.lstrip()
        if stripped.startswith("["):
            try:
                decoded = json.loads(stripped)
            except (ValueError, RecursionError):
                decoded = None
            if isinstance(decoded, list) and decoded and all(isinstance(x, str) for x in decoded):
                return decoded
        return [answer]
    if isinstance(answer, Sequence):
        return [x for x in answer if isinstance(x, str)]
    return []


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
