"""Method names -> method objects, and each method's answer parser for raw responses."""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Sequence
from typing import Any

from distalign.errors import InputError
from distalign.methods.base import Method
from distalign.methods.logprobs import LogprobsMethod
from distalign.methods.paraphrase import ParaphraseMethod
from distalign.methods.parsed import Parsed
from distalign.methods.self_random import SelfRandomMethod
from distalign.methods.seq import SeqMethod
from distalign.methods.verbalize import VerbalizeMethod
from distalign.methods.verbalize_then_sample import VerbalizeThenSampleMethod

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


#: each protocol's published settings where the two papers differ; a cell's own method.params win
PROTOCOL_DEFAULTS: dict[tuple[str, str], dict[str, Any]] = {
    # the benchmark asks for one verbalized distribution (greedy); the supervision paper averages n=3
    ("benchmark", "verbalize"): {"n": 1},
}


def _fits(value: Any, annotation: Any) -> bool:
    """Does a config value have the type a method's field declares? (ints are floats; bools are neither)"""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return any(_fits(value, a) for a in typing.get_args(annotation))
    if annotation is type(None):
        return value is None
    if annotation is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation in (str, bool):
        return isinstance(value, annotation)
    return True  # a type config values are not checked against


def _type_name(annotation: Any) -> str:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(annotation))
    return "null" if annotation is type(None) else getattr(annotation, "__name__", str(annotation))


def _check_types(key: str, cls: type, params: dict[str, Any]) -> None:
    hints = typing.get_type_hints(cls)
    for param, value in params.items():
        if param in hints and not _fits(value, hints[param]):
            raise InputError(
                f"parameter {param!r} of method {key!r} must be {_type_name(hints[param])}, got {value!r} "
                f"({type(value).__name__})",
                where=f"method.params.{param}",
            )


def get_method(name: str, protocol: str | None = None, **params: Any) -> Method:
    """A configured method (with ``protocol``'s published defaults under the cell's own ``params``); unknown
    names or parameters are an InputError listing what is accepted."""
    key = ALIASES.get(name, name)
    cls = METHODS.get(key)
    if cls is None:
        raise InputError(f"unknown method {name!r} (known: {', '.join(method_names())})", where="method")
    params = {**PROTOCOL_DEFAULTS.get((protocol or "", key), {}), **params}
    settable = [f.name for f in dataclasses.fields(cls) if f.name not in _FIXED]
    unknown = sorted(set(params) - set(settable))
    if unknown:
        raise InputError(
            f"unknown parameter {unknown[0]!r} for method {key!r} (known: {', '.join(settable)})",
            where=f"method.params.{unknown[0]}",
        )
    _check_types(key, cls, params)
    try:
        return cls(**params)
    except (TypeError, ValueError) as exc:
        raise InputError(f"bad parameters for method {key!r}: {exc}", where="method.params") from None


#: method name -> the pure answer parser of that method with its default settings: what ``distalign score``
#: uses for a raw response, and exactly what the sweep calls on engine results
PARSERS: dict[str, Callable[..., Parsed]] = {name: get_method(name).parse_answer for name in METHODS}


def parse_response(
    method: str, response: Any, letters: Sequence[str], labels: Sequence[str] | None = None
) -> Parsed:
    """Parse a method's raw response. An unknown method is a configuration error (``InputError``);
    anything the model wrote is data and never raises."""
    parser = PARSERS.get(ALIASES.get(method, method))
    if parser is None:
        raise InputError(
            f"no parser for method {method!r} (known: {', '.join(sorted(PARSERS))})", where="method"
        )
    return parser(response, letters, labels)
