"""Engine requests and results: two request kinds, each a frozen record.

Requests and results are frozen records. Errors are data (``error`` set, no exception), so one bad
request never loses the rest of a batch. Backends declare ``Capabilities`` so an impossible cell is
rejected at planning time instead of mid-sweep.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class Message:
    role: str  # "system" | "user" | "assistant"
    content: str


@dataclass(frozen=True)
class ModelIdentity:
    """What determines a model's outputs (its cache identity); never how it is served."""

    name: str
    weights: str  # HF id, local folder or provider model string
    revision: str = ""  # commit, checksum or provider snapshot; part of every cache key
    chat_template: str | None = None  # overrides the tokenizer's template when set


@dataclass(frozen=True)
class SamplingParams:
    """Every field that changes a generation. All are set explicitly (no engine defaults leak in)."""

    temperature: float = 0.0
    max_tokens: int = 64
    n: int = 1
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None
    #: when set, generation may only emit these strings' tokens (e.g. option letters for ``seq``).
    allowed: tuple[str, ...] | None = None
    #: force exactly max_tokens tokens (``seq``: a 30-letter sequence).
    min_tokens: int = 0


@dataclass(frozen=True)
class OptionLogprobRequest:
    """Next-token log-probabilities of ``candidates`` right after the rendered prompt.

    ``assistant_prefix`` is appended after the generation prompt (e.g. ``"Answer: "``) so that the
    option letter is the very next token.
    """

    messages: tuple[Message, ...]
    candidates: tuple[str, ...]
    assistant_prefix: str = ""


@dataclass(frozen=True)
class GenerateRequest:
    """``sample_index`` distinguishes repeated draws of the same prompt when an engine cannot return
    ``n`` samples at once; without it, de-duplication would collapse them into one."""

    messages: tuple[Message, ...]
    params: SamplingParams = field(default_factory=SamplingParams)
    assistant_prefix: str = ""
    sample_index: int = 0


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0


@dataclass(frozen=True)
class OptionLogprobResult:
    #: one entry per candidate; ``None`` when the engine did not return that token (not silently 0).
    logprobs: tuple[float | None, ...] = ()
    error: str | None = None
    usage: Usage = field(default_factory=Usage)
    cached: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class GenerateResult:
    texts: tuple[str, ...] = ()
    error: str | None = None
    usage: Usage = field(default_factory=Usage)
    cached: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class Capabilities:
    option_logprobs: bool = True
    generate: bool = True
    n_samples: bool = True  # one request may ask for n > 1 samples
    seed: bool = True
    allowed_tokens: bool = True  # can restrict generation to given strings' tokens


class CapabilityError(ValueError):
    """A cell asks an engine for something it cannot do; raised at planning time."""


@runtime_checkable
class Engine(Protocol):
    """The batched engine interface (implemented in ``distalign.engines``; methods that drive an engine
    directly, like the toy problem, see only this)."""

    identity: ModelIdentity
    capabilities: Capabilities

    def option_logprobs(self, requests: Sequence[OptionLogprobRequest]) -> list[OptionLogprobResult]: ...

    def generate(self, requests: Sequence[GenerateRequest]) -> list[GenerateResult]: ...
