"""Verbalize-then-sample, the hybrid the benchmark paper recommends: the model states a distribution, then
an external seeded sampler draws synthetic respondents from it. The model's knowledge of the distribution
is kept while the sampling is done by a process known to be calibrated.

The seed is derived from the configured seed and the model's stated answer(s), so parsing stays a pure
function of the answer: a rerun, or ``distalign score`` on the same raw text, draws the same respondents.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar

import numpy as np

from distalign.methods.base import Request, TextMethod, as_texts, check_positive
from distalign.methods.parsed import Parsed
from distalign.methods.verbalize import VerbalizeMethod
from distalign.prompts.render import RenderedPrompt, stable_seed
from distalign.records.engine import Capabilities


def draw_respondents(probs: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Empirical distribution of ``n`` respondents drawn from ``probs``."""
    counts = np.random.default_rng(seed).multinomial(n, np.asarray(probs, dtype=float))
    return counts / n


@dataclass(frozen=True)
class VerbalizeThenSampleMethod(TextMethod):
    n_respondents: int = 30
    seed: int = 0
    n: int = 1
    temperature: float | None = None
    max_tokens: int = 200
    cot_max_tokens: int = 800  # the CoT prompt allows 500 words of reasoning before the answer marker
    name: ClassVar[str] = "verbalize_then_sample"
    fmt: ClassVar[str] = "verbalize"
    formats: ClassVar[Mapping[str, str]] = MappingProxyType(
        {"benchmark": "verbalize", "supervision": "verbalize"}
    )

    def __post_init__(self) -> None:
        check_positive(n_respondents=self.n_respondents)

    @property
    def verbalize(self) -> VerbalizeMethod:
        return VerbalizeMethod(
            n=self.n,
            temperature=self.temperature,
            max_tokens=self.max_tokens,
            cot_max_tokens=self.cot_max_tokens,
            seed=self.seed,
        )

    @property
    def n_answers(self) -> int:  # type: ignore[override]
        return self.n

    def requests(self, prompt: RenderedPrompt, capabilities: Capabilities | None = None) -> list[Request]:
        return self.verbalize.requests(prompt, capabilities)

    def parse_answer(
        self, answer: Any, letters: Sequence[str], labels: Sequence[str] | None = None
    ) -> Parsed:
        stated = self.verbalize.parse_answer(answer, letters, labels)
        if stated.probs is None:
            return stated
        seed = stable_seed(self.seed, *as_texts(answer))
        probs = draw_respondents(stated.probs, self.n_respondents, seed)
        detail = f"{self.n_respondents} respondents drawn; {stated.detail}".rstrip("; ")
        return Parsed(probs, stated.status, detail, stated.n_total, stated.n_valid)
