"""Method names -> method objects, and the prompt spec a (method, steering) cell needs."""

from __future__ import annotations

import dataclasses
from typing import Any

from distalign.errors import InputError
from distalign.methods.base import Method, format_for
from distalign.methods.logprobs import LogprobsMethod
from distalign.methods.paraphrase import ParaphraseMethod
from distalign.methods.self_random import SelfRandomMethod
from distalign.methods.seq import SeqMethod
from distalign.methods.verbalize import VerbalizeMethod
from distalign.methods.verbalize_then_sample import VerbalizeThenSampleMethod
from distalign.prompts.render import PromptSpec

METHODS: dict[str, type] = {
    "logprobs": LogprobsMethod,
    "seq": SeqMethod,
    "verbalize": VerbalizeMethod,
    "self_random": SelfRandomMethod,
    "paraphrase": ParaphraseMethod,
    "verbalize_then_sample": VerbalizeThenSampleMethod,
}
ALIASES: dict[str, str] = {"logp": "logprobs"}
#: fields that identify a method and are not settings
_FIXED = frozenset({"name", "fmt", "formats"})


def method_names() -> list[str]:
    return [*METHODS, *ALIASES]


def get_method(name: str, **params: Any) -> Method:
    """A configured method; unknown names or parameters are an InputError listing what is accepted."""
    key = ALIASES.get(name, name)
    cls = METHODS.get(key)
    if cls is None:
        raise InputError(f"unknown method {name!r} (known: {', '.join(method_names())})", where="method")
    settable = [f.name for f in dataclasses.fields(cls) if f.name not in _FIXED]
    unknown = sorted(set(params) - set(settable))
    if unknown:
        raise InputError(
            f"unknown parameter {unknown[0]!r} for method {key!r} (known: {', '.join(settable)})",
            where=f"method.params.{unknown[0]}",
        )
    try:
        return cls(**params)
    except (TypeError, ValueError) as exc:
        raise InputError(f"bad parameters for method {key!r}: {exc}", where="method.params") from None


def prompt_spec(
    method: Method,
    protocol: str,
    steering: str,
    *,
    few_shot: bool = False,
    cot: bool = False,
    n_examples: int = 5,
    paraphrase: int = 0,
) -> PromptSpec:
    """The prompt a cell renders: the method decides the answer format, the steering config the rest."""
    return PromptSpec(
        protocol=protocol,  # type: ignore[arg-type]
        steering=steering,
        fmt=format_for(method, protocol),
        paraphrase=paraphrase,
        cot=cot,
        few_shot=few_shot,
        n_examples=n_examples,
        seq_len=int(getattr(method, "seq_len", 30)),
    )
