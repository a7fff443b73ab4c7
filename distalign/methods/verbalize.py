"""Verbalized elicitation: the model writes the distribution (JSON/dict/list of percentages).

``n`` generations are averaged, renormalised, and unparseable ones discarded (Kambhatla et al. use n=3; the
benchmark uses n=1). Temperature: greedy when n=1 (one answer, reproducible); 0.7 when n>1, because n greedy
generations of one prompt are identical and averaging them would add nothing (0.7 is the sampling
temperature the supervision paper uses for self-random).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import ClassVar

from distalign.methods.base import Request, TextMethod, check_positive, sample_requests
from distalign.methods.parsed import Parsed
from distalign.methods.parsers.letter import extract_final_answer
from distalign.methods.parsers.verbalized import parse_verbalized_many
from distalign.prompts.render import RenderedPrompt
from distalign.records.engine import Capabilities, SamplingParams


def final_answers(texts: Sequence[str]) -> list[str]:
    """Where an answer marks its final answer (chain of thought), only that part counts; the rule is the
    same whatever the prompt asked, so a file of raw texts parses exactly as the sweep parsed them."""
    return [a if (a := extract_final_answer(t)) is not None else t for t in texts]


@dataclass(frozen=True)
class VerbalizeMethod(TextMethod):
    n: int = 3
    temperature: float | None = None  # None: 0.0 for n=1, 0.7 for n>1
    max_tokens: int = 200
    cot_max_tokens: int = 800  # the CoT prompt allows 500 words of reasoning before the answer marker
    seed: int | None = 0
    name: ClassVar[str] = "verbalize"
    fmt: ClassVar[str] = "verbalize"
    formats: ClassVar[Mapping[str, str]] = MappingProxyType(
        {"benchmark": "verbalize", "supervision": "verbalize"}
    )

    def __post_init__(self) -> None:
        check_positive(n=self.n, max_tokens=self.max_tokens, cot_max_tokens=self.cot_max_tokens)

    @property
    def effective_temperature(self) -> float:
        if self.temperature is not None:
            return float(self.temperature)
        return 0.0 if self.n == 1 else 0.7

    def params(self, prompt: RenderedPrompt) -> SamplingParams:
        return SamplingParams(
            temperature=self.effective_temperature,
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
        return parse_verbalized_many(final_answers(texts), letters, labels)
