"""Log-probability elicitation: the next-token probabilities of the option letters after the prompt,
renormalised over the options. One forward pass, no sampling, so no temperature or seed is involved."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar

from distalign.methods.base import Request, Result, prompt_spec_for
from distalign.methods.parsed import Parsed
from distalign.methods.parsers.option_logprobs import logprob_coverage, logprobs_to_distribution
from distalign.prompts.render import PromptSpec, RenderedPrompt
from distalign.records.config import SteeringConfig
from distalign.records.engine import Capabilities, CapabilityError, OptionLogprobRequest, OptionLogprobResult


@dataclass(frozen=True)
class LogprobsMethod:
    name: ClassVar[str] = "logprobs"
    fmt: ClassVar[str] = "logprobs"
    formats: ClassVar[Mapping[str, str]] = MappingProxyType(
        {"benchmark": "logprobs", "supervision": "single"}
    )

    def prompt_spec(self, steering: SteeringConfig) -> PromptSpec:
        return prompt_spec_for(self, steering)

    def requests(self, prompt: RenderedPrompt, capabilities: Capabilities | None = None) -> list[Request]:
        if capabilities is not None and not capabilities.option_logprobs:
            raise CapabilityError("method 'logprobs' needs an engine that returns option log-probabilities")
        return [OptionLogprobRequest(prompt.messages, prompt.letters, prompt.assistant_prefix)]

    def parse(self, prompt: RenderedPrompt, results: Sequence[Result]) -> Parsed:
        if len(results) != 1 or not isinstance(results[0], OptionLogprobResult):
            return Parsed.unparsed(f"expected one log-prob result, got {len(results)}")
        result = results[0]
        if result.error is not None:
            return Parsed.unparsed(f"request failed: {result.error}")
        return self.parse_answer(list(result.logprobs), prompt.letters, prompt.labels)

    def parse_answer(
        self, answer: Any, letters: Sequence[str], labels: Sequence[str] | None = None
    ) -> Parsed:
        """Log-probs in letter order (a list, ``None`` where the engine returned no token) or a mapping
        letter -> log-prob, as objects or JSON text. Options whose token is missing stay explicit:
        ``partial`` with their letters."""
        value: object = answer
        if isinstance(answer, str):
            try:
                value = json.loads(answer)
            except (ValueError, RecursionError):
                return Parsed.unparsed("log-probs are not JSON")
        if isinstance(value, Mapping):
            upper = {str(k).strip().upper(): v for k, v in value.items()}
            value = [upper.get(str(x).upper()) for x in letters]
        if not isinstance(value, Sequence) or isinstance(value, str) or len(value) != len(letters):
            n = len(value) if isinstance(value, Sequence) and not isinstance(value, str) else "no"
            return Parsed.unparsed(f"{n} log-probs for {len(letters)} options")
        logprobs = list(value)
        parsed = logprobs_to_distribution(logprobs)
        missing = [str(x) for x, lp in zip(letters, logprobs, strict=True) if lp is None]
        if not missing or not parsed.extracted:
            return parsed
        detail = f"coverage {logprob_coverage(logprobs):.4g}; missing: {', '.join(missing)}"
        return Parsed(parsed.probs, "partial", detail, parsed.n_total, parsed.n_valid)
