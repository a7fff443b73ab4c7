"""An in-process engine that answers at once, deterministically, from a hash of each request.

It is a real ``Engine`` for plumbing (tests, dry runs, the sweep overhead benchmark): the same request always
gets the same answer, different requests get different answers, and the time spent inside it is negligible,
so whatever time a sweep takes with it is orchestration. It is not a model. ``serving.delay_s`` makes it
a simulated engine that spends that long on each batch (what an engine-bound sweep looks like, or time to
interrupt a sweep mid-way).
"""

from __future__ import annotations

import hashlib
import math
import random
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from distalign.engines.base import EngineSpec
from distalign.errors import InputError
from distalign.records.engine import (
    Capabilities,
    GenerateRequest,
    GenerateResult,
    Message,
    ModelIdentity,
    OptionLogprobRequest,
    OptionLogprobResult,
    Usage,
)

_LETTER_LINE = re.compile(r"^\s*\(?([A-Z])[.)]\s", re.MULTILINE)
#: Kambhatla et al.'s formats: an index in [1,l], a list of l percentages, and the CoT answer markers
_INDEX_ASK = re.compile(r"single integer number in the inclusive range \[1,\s*(\d+)\]")
_LIST_ASK = re.compile(r"Respond with a list of (\d+) numbers")
_MARKERS_ASK = "<ANS_START>"
#: below this many tokens a free generation answers with a single letter instead of a JSON object
_SHORT_ANSWER_TOKENS = 17  # single-answer methods ask for up to 16 tokens (8 by default)


def _prompt_text(messages: Sequence[Message], prefix: str) -> str:
    return "\n".join(f"{m.role}:{m.content}" for m in messages) + "\n" + prefix


def _sub(digest: bytes, i: int) -> bytes:
    return digest if i == 0 else hashlib.blake2b(digest + i.to_bytes(4, "little"), digest_size=16).digest()


def _rng(digest: bytes) -> random.Random:
    """A generator seeded by a request digest: the same request always draws the same numbers."""
    return random.Random(int.from_bytes(digest[:16], "little"))


def _dirichlet(rng: random.Random, k: int) -> list[float]:
    """A flat Dirichlet draw (normalised exponentials), in plain Python: k is a handful of options."""
    w = [rng.expovariate(1.0) for _ in range(k)]
    total = sum(w)
    return [x / total for x in w]


class InstantEngine:
    """Deterministic pseudo-answers; ``seed`` changes every answer (a different "model")."""

    capabilities = Capabilities()

    def __init__(self, identity: ModelIdentity, seed: int = 0, delay_s: float = 0.0) -> None:
        self.identity = identity
        self.seed = seed
        self.calls = 0
        self.requests_seen = 0
        self._salt = f"{identity.name}|{identity.weights}|{identity.revision}|{identity.chat_template}|{seed}"
        self._delay_s = delay_s

    def _digest(self, kind: str, body: str) -> bytes:
        return hashlib.blake2b(f"{self._salt}|{kind}|{body}".encode(), digest_size=32).digest()

    def _begin(self, kind: str, digests: list[bytes]) -> None:
        """Called once per batch with its requests' digests, before any answer is made."""
        self.calls += 1
        self.requests_seen += len(digests)
        if self._delay_s:
            time.sleep(self._delay_s)

    def option_logprobs(self, requests: Sequence[OptionLogprobRequest]) -> list[OptionLogprobResult]:
        texts = [_prompt_text(r.messages, r.assistant_prefix) for r in requests]
        digests = [
            self._digest("lp", t + "|" + "\x1f".join(r.candidates))
            for t, r in zip(texts, requests, strict=True)
        ]
        self._begin("option_logprobs", digests)
        out = []
        for text, req, dig in zip(texts, requests, digests, strict=True):
            probs = _dirichlet(_rng(dig), len(req.candidates)) if req.candidates else []
            out.append(
                OptionLogprobResult(
                    logprobs=tuple(math.log(p) for p in probs),
                    usage=Usage(prompt_tokens=len(text) // 4, completion_tokens=1),
                )
            )
        return out

    def generate(self, requests: Sequence[GenerateRequest]) -> list[GenerateResult]:
        texts = [_prompt_text(r.messages, r.assistant_prefix) for r in requests]
        digests = [
            self._digest("gen", f"{t}|{r.params!r}|{r.sample_index}")
            for t, r in zip(texts, requests, strict=True)
        ]
        self._begin("generate", digests)
        out = []
        for text, req, dig in zip(texts, requests, digests, strict=True):
            samples = tuple(self._sample(text, req, _sub(dig, i)) for i in range(req.params.n))
            completion = sum(len(s) for s in samples) // 4
            out.append(
                GenerateResult(
                    texts=samples, usage=Usage(prompt_tokens=len(text) // 4, completion_tokens=completion)
                )
            )
        return out

    @staticmethod
    def _sample(text: str, req: GenerateRequest, dig: bytes) -> str:
        params = req.params
        rng = _rng(dig)
        if params.allowed:
            allowed = [a.strip() or a for a in params.allowed]
            return " ".join(rng.choices(allowed, k=max(params.max_tokens, 1)))
        user = next((m.content for m in reversed(req.messages) if m.role == "user"), text)
        task = user.rsplit("Task:", 1)[-1]  # a few-shot prompt's own question comes after its examples
        index, listed = _INDEX_ASK.search(task), _LIST_ASK.search(task)
        if index or listed:
            answer = InstantEngine._answer_kambhatla(rng, index, listed)
            if _MARKERS_ASK in task:
                return f"Step by step: the groups differ. <ANS_START>{answer}</ANS_END>"
            return answer
        letters = list(dict.fromkeys(_LETTER_LINE.findall(user))) or ["A"]
        if params.max_tokens < _SHORT_ANSWER_TOKENS:
            return rng.choice(letters)
        pct = _percentages(rng, len(letters))
        return "{" + ", ".join(f'"{a}": {p}' for a, p in zip(letters, pct, strict=True)) + "}"

    @staticmethod
    def _answer_kambhatla(rng: random.Random, index: re.Match | None, listed: re.Match | None) -> str:
        """The answer the supervision protocol's prompt asks for: an index 1..l or ``[p1, ..., pl]``."""
        if index:
            return str(rng.randint(1, max(int(index.group(1)), 1)))
        assert listed is not None
        return "[" + ", ".join(map(str, _percentages(rng, max(int(listed.group(1)), 1)))) + "]"


def _percentages(rng: random.Random, k: int) -> list[int]:
    """k whole percentages summing to 100."""
    pct = [int(100 * p) for p in _dirichlet(rng, k)]
    pct[pct.index(max(pct))] += 100 - sum(pct)
    return pct


if TYPE_CHECKING:
    from distalign.records.config import ModelConfig


@dataclass
class InstantSettings:
    #: seconds spent on each batch: a simulated engine (0: answers at once)
    delay_s: float = 0.0


def _check(model: ModelConfig, settings: InstantSettings, require_keys: bool) -> None:
    if settings.delay_s < 0:
        raise InputError(
            f"must be a number of seconds >= 0, got {settings.delay_s}",
            where=f"model {model.name!r}: serving.delay_s",
        )


def _build(model: ModelConfig, settings: Any, identity: ModelIdentity) -> InstantEngine:
    return InstantEngine(identity, delay_s=settings.delay_s)


ENGINE = EngineSpec(name="instant", settings=InstantSettings, build=_build, check=_check)
