"""A scripted engine for method tests: answers come from a function of the request, and every request
is recorded so a test can check what a method asked for."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from distalign.records.engine import (
    Capabilities,
    GenerateRequest,
    GenerateResult,
    ModelIdentity,
    OptionLogprobRequest,
    OptionLogprobResult,
)


@dataclass
class ScriptedEngine:
    logprobs: Callable[[OptionLogprobRequest], OptionLogprobResult] | None = None
    texts: Callable[[GenerateRequest], GenerateResult] | None = None
    capabilities: Capabilities = field(default_factory=Capabilities)
    identity: ModelIdentity = field(default_factory=lambda: ModelIdentity("scripted", "scripted"))
    seen: list = field(default_factory=list)

    def option_logprobs(self, requests: Sequence[OptionLogprobRequest]) -> list[OptionLogprobResult]:
        assert self.logprobs is not None, "no log-prob script"
        self.seen.extend(requests)
        return [self.logprobs(r) for r in requests]

    def generate(self, requests: Sequence[GenerateRequest]) -> list[GenerateResult]:
        assert self.texts is not None, "no generation script"
        self.seen.extend(requests)
        return [self.texts(r) for r in requests]
