"""Self-random elicitation (Kambhatla et al.): n=5 single answers sampled at temperature 0.7 from ONE
request; the distribution is their empirical frequency."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import ClassVar

from distalign.methods.base import Request, TextMethod, check_positive, sample_requests
from distalign.methods.parsed import Parsed
from distalign.methods.parsers.letter import parse_letter_samples
from distalign.prompts.render import RenderedPrompt
from distalign.records.engine import Capabilities, SamplingParams


@dataclass(frozen=True)
class SelfRandomMethod(TextMethod):
    n: int = 5
    temperature: float = 0.7
    max_tokens: int = 8
    cot_max_tokens: int = 800  # the CoT prompt allows 500 words of reasoning before the answer marker
    seed: int | None = 0
    name: ClassVar[str] = "self_random"
    fmt: ClassVar[str] = "logprobs"
    formats: ClassVar[Mapping[str, str]] = MappingProxyType(
        {"benchmark": "logprobs", "supervision": "single"}
    )

    def __post_init__(self) -> None:
        check_positive(n=self.n, max_tokens=self.max_tokens, cot_max_tokens=self.cot_max_tokens)

    def params(self, prompt: RenderedPrompt) -> SamplingParams:
        return SamplingParams(
            temperature=self.temperature,
            max_tokens=self.cot_max_tokens if prompt.cot else self.max_tokens,
            n=self.n,
            top_p=1.0,
            seed=self.seed,
        )

    def requests(self, prompt: RenderedPrompt, capabilities: Capabilities | None = None) -> list[Request]:
        return list(
            sample_requests(prompt.messages, self.params(prompt), prompt.assistant_prefix, capabilities)
        )

    @property
    def n_answers(self) -> int:  # type: ignore[override]
        return self.n

    def parse_texts(self, texts: list[str], letters: Sequence[str], labels: Sequence[str] | None) -> Parsed:
        return parse_letter_samples(texts, letters, labels)
