"""Parsers: model text -> a distribution over the shown options. All are pure and total: they never
raise on model output, and an unreadable answer becomes ``Parsed.unparsed`` (counted in the extraction
rate).

``PARSERS`` maps a method name to a parser with one signature, ``(response, letters, labels) -> Parsed``,
where ``response`` is a string or a list of strings (n generations); ``parse_response`` dispatches.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence

from distalign.errors import InputError
from distalign.methods.parsed import Parsed
from distalign.methods.parsers.index import index_answer, is_index
from distalign.methods.parsers.letter import extract_final_answer, parse_letter, parse_letter_samples
from distalign.methods.parsers.option_logprobs import logprob_coverage, logprobs_to_distribution
from distalign.methods.parsers.sequence import parse_sequence
from distalign.methods.parsers.verbalized import parse_verbalized, parse_verbalized_many

Response = str | Sequence[str]
Parser = Callable[[Response, Sequence[str], Sequence[str] | None], Parsed]


def _first(response: Response) -> str:
    if isinstance(response, str):
        return response
    if isinstance(response, Sequence) and response and isinstance(response[0], str):
        return response[0]
    return ""


def _seq(response: Response, letters: Sequence[str], labels: Sequence[str] | None = None) -> Parsed:
    return parse_sequence(_first(response), letters)


def _logprobs(
    response: Response | Mapping[str, float], letters: Sequence[str], labels: Sequence[str] | None = None
) -> Parsed:
    """A mapping letter -> log-prob, or a list in letter order, given as an object or as JSON text."""
    value: object = response
    if isinstance(response, str):
        try:
            value = json.loads(response)
        except (ValueError, RecursionError):
            return Parsed.unparsed("log-probs are not JSON")
    if isinstance(value, Mapping):
        upper = {str(k).strip().upper(): v for k, v in value.items()}
        value = [upper.get(str(x).upper()) for x in letters]
    elif not isinstance(value, Sequence) or isinstance(value, str) or len(value) != len(letters):
        return Parsed.unparsed(f"expected {len(letters)} log-probs in letter order or a letter mapping")
    return logprobs_to_distribution(list(value), letters)


def _verbalized_one(
    response: Response, letters: Sequence[str], labels: Sequence[str] | None = None
) -> Parsed:
    return parse_verbalized(_first(response), letters, labels)


PARSERS: dict[str, Parser] = {
    "verbalize": parse_verbalized_many,
    "seq": _seq,
    "logprobs": _logprobs,
    "self_random": parse_letter_samples,
    "paraphrase": parse_letter_samples,
    "verbalize_then_sample": _verbalized_one,
}


def parse_response(
    method: str, response: Response, letters: Sequence[str], labels: Sequence[str] | None = None
) -> Parsed:
    """Parse a method's raw response. An unknown method is a configuration error (``InputError``);
    anything the model wrote is data and never raises."""
    parser = PARSERS.get(method)
    if parser is None:
        raise InputError(
            f"no parser for method {method!r} (known: {', '.join(sorted(PARSERS))})", where="method"
        )
    return parser(response, letters, labels)


__all__ = [
    "PARSERS",
    "Parser",
    "extract_final_answer",
    "index_answer",
    "is_index",
    "logprob_coverage",
    "logprobs_to_distribution",
    "parse_letter",
    "parse_letter_samples",
    "parse_response",
    "parse_sequence",
    "parse_verbalized",
    "parse_verbalized_many",
]
