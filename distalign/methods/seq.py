"""Sequence elicitation (benchmark): one generation of ``seq_len`` option letters sampled at temperature
1.0; the distribution is the letter counts over the valid options."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import ClassVar

from distalign.methods.base import (
    Request,
    Result,
    check_positive,
    generated_texts,
    sample_requests,
    with_errors,
)
from distalign.methods.parsed import Parsed
from distalign.methods.parsers.sequence import parse_sequence
from distalign.prompts.render import RenderedPrompt
from distalign.records.engine import Capabilities, SamplingParams


@dataclass(frozen=True)
class SeqMethod:
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

    def parse(self, prompt: RenderedPrompt, results: Sequence[Result]) -> Parsed:
        texts, errors = generated_texts(results)
        parsed = (
            parse_sequence(texts[0], prompt.letters, self.seq_len)
            if texts
            else Parsed.unparsed("no generation")
        )
        return with_errors(parsed, errors, 1)
