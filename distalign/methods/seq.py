"""Sequence elicitation (benchmark): one generation of ``seq_len`` option letters sampled at temperature
1.0; the distribution is the letter counts over the valid options."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import ClassVar

from distalign.methods.base import (
    Request,
    TextMethod,
    check_positive,
    prompt_spec_for,
    sample_requests,
)
from distalign.methods.parsed import Parsed
from distalign.methods.parsers.sequence import parse_sequence
from distalign.prompts.render import PromptSpec, RenderedPrompt
from distalign.records.config import SteeringConfig
from distalign.records.engine import Capabilities, SamplingParams


@dataclass(frozen=True)
class SeqMethod(TextMethod):
    """With token restriction the engine emits exactly ``seq_len`` letter tokens; an engine that cannot
    restrict tokens (most APIs) gets room for separators instead (``4 * seq_len`` tokens, no minimum)."""

    seq_len: int = 30
    temperature: float = 1.0
    seed: int | None = 0
    name: ClassVar[str] = "seq"
    fmt: ClassVar[str] = "seq"
    formats: ClassVar[Mapping[str, str]] = MappingProxyType({"benchmark": "seq"})

    def __post_init__(self) -> None:
        check_positive(seq_len=self.seq_len)

    def params(self, prompt: RenderedPrompt, capabilities: Capabilities | None = None) -> SamplingParams:
        restricted = capabilities is None or capabilities.allowed_tokens
        return SamplingParams(
            temperature=self.temperature,
            max_tokens=self.seq_len if restricted else 4 * self.seq_len,
            min_tokens=self.seq_len if restricted else 0,
            n=1,
            top_p=1.0,
            seed=self.seed,
            allowed=prompt.letters if restricted else None,
        )

    def requests(self, prompt: RenderedPrompt, capabilities: Capabilities | None = None) -> list[Request]:
        return list(
            sample_requests(
                prompt.messages, self.params(prompt, capabilities), prompt.assistant_prefix, capabilities
            )
        )

    def prompt_spec(self, steering: SteeringConfig) -> PromptSpec:
        """The prompt asks for exactly the ``seq_len`` letters the request generates."""
        return prompt_spec_for(self, steering, seq_len=self.seq_len)

    def parse_texts(self, texts: list[str], letters: Sequence[str], labels: Sequence[str] | None) -> Parsed:
        return parse_sequence(texts[0], letters, self.seq_len)
