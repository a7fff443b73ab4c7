"""Log-probability elicitation: the next-token probabilities of the option letters after the prompt,
renormalised over the options. One forward pass, no sampling, so no temperature or seed is involved."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import ClassVar

from distalign.methods.base import Request, Result
from distalign.methods.parsed import Parsed
from distalign.methods.parsers.option_logprobs import logprob_coverage, logprobs_to_distribution
from distalign.prompts.render import RenderedPrompt
from distalign.records.engine import Capabilities, CapabilityError, OptionLogprobRequest, OptionLogprobResult


@dataclass(frozen=True)
class LogprobsMethod:
    name: ClassVar[str] = "logprobs"
    fmt: ClassVar[str] = "logprobs"
    formats: ClassVar[Mapping[str, str]] = MappingProxyType(
        {"benchmark": "logprobs", "supervision": "single"}
    )

    def requests(self, prompt: RenderedPrompt, capabilities: Capabilities | None = None) -> list[Request]:
        if capabilities is not None and not capabilities.option_logprobs:
            raise CapabilityError("method 'logprobs' needs an engine that returns option log-probabilities")
        return [OptionLogprobRequest(prompt.messages, prompt.letters, prompt.assistant_prefix)]

    def parse(self, prompt: RenderedPrompt, results: Sequence[Result]) -> Parsed:
        """Options whose token the engine did not return stay explicit: ``partial`` with their letters."""
        if len(results) != 1 or not isinstance(results[0], OptionLogprobResult):
            return Parsed.unparsed(f"expected one log-prob result, got {len(results)}")
        result = results[0]
        if result.error is not None:
            return Parsed.unparsed(f"request failed: {result.error}")
        if len(result.logprobs) != len(prompt.letters):
            return Parsed.unparsed(f"{len(result.logprobs)} log-probs for {len(prompt.letters)} options")
        parsed = logprobs_to_distribution(result.logprobs)
        missing = [letter for letter, lp in zip(prompt.letters, result.logprobs, strict=True) if lp is None]
        if not missing or not parsed.extracted:
            return parsed
        detail = f"coverage {logprob_coverage(result.logprobs):.4g}; missing: {', '.join(missing)}"
        return Parsed(parsed.probs, "partial", detail, parsed.n_total, parsed.n_valid)
