"""Paraphrase elicitation (Kambhatla et al.): one answer to each of 5 paraphrased prompts; the
distribution is the frequency of the answers. The spread comes from the wording, not from sampling, so the
answers are greedy by default."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import ClassVar

from distalign.errors import InputError
from distalign.methods.base import Request, TextMethod, check_positive, sample_requests
from distalign.methods.parsed import Parsed
from distalign.methods.parsers.letter import parse_letter_samples
from distalign.prompts.render import RenderedPrompt
from distalign.records.engine import Capabilities, GenerateRequest, SamplingParams


@dataclass(frozen=True)
class ParaphraseMethod(TextMethod):
    n_paraphrases: int = 5
    temperature: float = 0.0
    max_tokens: int = 8
    cot_max_tokens: int = 800  # the CoT prompt allows 500 words of reasoning before the answer marker
    seed: int | None = 0
    name: ClassVar[str] = "paraphrase"
    fmt: ClassVar[str] = "single"
    formats: ClassVar[Mapping[str, str]] = MappingProxyType({"supervision": "single"})

    def __post_init__(self) -> None:
        check_positive(n_paraphrases=self.n_paraphrases, max_tokens=self.max_tokens)

    def params(self, prompt: RenderedPrompt) -> SamplingParams:
        return SamplingParams(
            temperature=self.temperature,
            max_tokens=self.cot_max_tokens if prompt.cot else self.max_tokens,
            n=1,
            top_p=1.0,
            seed=self.seed,
        )

    def requests(self, prompt: RenderedPrompt, capabilities: Capabilities | None = None) -> list[Request]:
        if len(prompt.variants) < self.n_paraphrases:
            raise InputError(
                f"method 'paraphrase' needs {self.n_paraphrases} paraphrased prompts but the prompt has "
                f"{len(prompt.variants)} (use the supervision protocol, or add framings to the templates)",
                where="method paraphrase",
            )
        out: list[GenerateRequest] = []
        for messages in prompt.variants[: self.n_paraphrases]:
            out.extend(sample_requests(messages, self.params(prompt), prompt.assistant_prefix, capabilities))
        return list(out)

    @property
    def n_answers(self) -> int:  # type: ignore[override]
        return self.n_paraphrases

    def parse_texts(self, texts: list[str], letters: Sequence[str], labels: Sequence[str] | None) -> Parsed:
        return parse_letter_samples(texts, letters, labels)
