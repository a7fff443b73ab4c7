"""What a prompt is asked to be (``PromptSpec``) and what rendering yields (``RenderedPrompt``).

Shared by every prompt renderer (the packaged wording and the papers' own prompts), so it sits below them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from distalign.errors import InputError
from distalign.records.engine import Message

PromptProtocol = Literal["benchmark", "supervision"]
STEERINGS: Mapping[str, tuple[str, ...]] = {
    "benchmark": ("none", "persona", "few_shot"),
    "supervision": ("base", "sd"),
}
FORMATS: Mapping[str, tuple[str, ...]] = {
    "benchmark": ("logprobs", "seq", "verbalize"),
    "supervision": ("verbalize", "single"),
}
#: steering modes that name no group (their prompt is shared by every group of an item)
GROUPLESS: frozenset[str] = frozenset({"none", "base"})


@dataclass(frozen=True)
class PromptSpec:
    """Which prompt to build. ``few_shot``/``cot`` are supervision-protocol variants; in the benchmark
    protocol few-shot is its own steering mode."""

    protocol: PromptProtocol
    steering: str
    fmt: str
    paraphrase: int = 0
    cot: bool = False
    few_shot: bool = False
    n_examples: int = 5
    seq_len: int = 30

    def __post_init__(self) -> None:
        if self.protocol not in STEERINGS:
            raise InputError(
                f"unknown protocol {self.protocol!r} (known: {', '.join(STEERINGS)})", where="protocol"
            )
        if self.steering not in STEERINGS[self.protocol]:
            known = ", ".join(STEERINGS[self.protocol])
            raise InputError(
                f"steering {self.steering!r} is not part of the {self.protocol} protocol (known: {known})",
                where="steering",
            )
        if self.fmt not in FORMATS[self.protocol]:
            known = ", ".join(FORMATS[self.protocol])
            raise InputError(
                f"format {self.fmt!r} is not part of the {self.protocol} protocol (known: {known})",
                where="fmt",
            )
        if self.protocol == "benchmark":
            if self.cot:
                raise InputError("chain of thought is a supervision-protocol variant", where="cot")
            if self.few_shot and self.steering != "few_shot":
                raise InputError("in the benchmark protocol use steering 'few_shot'", where="few_shot")
            if self.paraphrase:
                raise InputError("paraphrases are a supervision-protocol variant", where="paraphrase")
        if self.paraphrase < 0:
            raise InputError("paraphrase index must be >= 0", where="paraphrase")
        if self.n_examples < 1 or self.seq_len < 1:
            raise InputError("n_examples and seq_len must be >= 1", where="n_examples/seq_len")

    @property
    def uses_examples(self) -> bool:
        return self.steering == "few_shot" or self.few_shot

    @property
    def names_group(self) -> bool:
        return self.steering not in GROUPLESS


@dataclass(frozen=True)
class RenderedPrompt:
    """Chat messages plus what a parser needs (letters/labels in the shown order).

    ``variants`` holds the messages of every paraphrase of the same prompt (supervision protocol), so the
    paraphrase method can ask all of them from one rendered prompt.
    """

    messages: tuple[Message, ...]
    assistant_prefix: str
    letters: tuple[str, ...]
    labels: tuple[str, ...]
    variants: tuple[tuple[Message, ...], ...] = ()
    #: the model is asked to reason first (answer between markers), so it needs a longer budget
    cot: bool = False

    @property
    def prompt_hash(self) -> str:
        """sha256 of every field, each string prefixed by its length so no two prompts share a
        serialisation; stable across processes and Python versions (and cheaper than JSON)."""
        texts: list[str] = [str(len(self.messages))]
        for m in self.messages:
            texts += (m.role, m.content)
        texts += (self.assistant_prefix, str(len(self.letters)), *self.letters)
        texts += (str(len(self.labels)), *map(str, self.labels), str(len(self.variants)))
        for v in self.variants:
            texts.append(str(len(v)))
            for m in v:
                texts += (m.role, m.content)
        texts.append("cot" if self.cot else "")
        blob = "".join(f"{len(t)}:{t}" for t in texts)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def stable_seed(*parts: object) -> int:
    """A 63-bit seed from text parts (Python's ``hash`` is salted per process, so it cannot be used)."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") >> 1
