"""Parsers are total: whatever a model writes, they return a valid ``Parsed`` and never raise."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from distalign.errors import InputError
from distalign.methods.parsed import Parsed
from distalign.methods.parsers import parse_letter, parse_sequence, parse_verbalized
from distalign.methods.registry import PARSERS, parse_response

FRAGMENTS = st.sampled_from(
    [
        '{"A": ',
        "}",
        "{",
        "[",
        "]",
        ",",
        ": ",
        "%",
        "A",
        "b",
        "(C)",
        "<answer>",
        "</answer>",
        "Answer:",
        '"',
        "'",
        "1e999",
        "-3",
        "0",
        "NaN",
        "null",
        "\n",
        "```json",
        "```",
        "\u00e9\u4e2d\U0001f600",
        "Option A",
        "100",
    ]
)
JSONISH = st.lists(st.one_of(FRAGMENTS, st.text(max_size=5)), max_size=40).map("".join)
TEXT = st.one_of(st.text(), JSONISH)
LETTERS = st.sampled_from(["AB", "ABC", "ABCD", "ABCDEFGHIJ"])


def _valid(p: Parsed, k: int) -> None:
    assert isinstance(p, Parsed) and p.status in {"ok", "partial", "unparsed"}
    if p.status == "unparsed":
        assert p.probs is None
    else:
        assert p.probs.shape == (k,) and np.all(p.probs >= 0) and np.isclose(p.probs.sum(), 1)
    assert 0 <= p.n_valid <= p.n_total


@settings(max_examples=300, deadline=None)
@given(TEXT, LETTERS)
def test_single_text_parsers_never_raise(text: str, letters: str) -> None:
    labels = [f"label {c}" for c in letters]
    for p in (
        parse_verbalized(text, letters, labels),
        parse_sequence(text, letters),
        parse_letter(text, letters, labels),
    ):
        _valid(p, len(letters))


@settings(max_examples=200, deadline=None)
@given(st.lists(TEXT, max_size=4), LETTERS, st.sampled_from(sorted(PARSERS)))
def test_every_method_parser_never_raises(texts: list[str], letters: str, method: str) -> None:
    _valid(parse_response(method, texts, letters, None), len(letters))
    _valid(parse_response(method, texts[0] if texts else "", letters, None), len(letters))


def test_huge_garbage_is_bounded_and_total() -> None:
    text = "{" * 50_000 + '"A": 1, ' * 50_000 + "]" * 10_000
    for parser in (parse_verbalized, parse_sequence, parse_letter):
        _valid(parser(text, "ABC"), 3)


def test_non_string_input_is_unparsed() -> None:
    for parser in (parse_verbalized, parse_sequence, parse_letter):
        assert parser(None, "AB").status == "unparsed"  # type: ignore[arg-type]


def test_unknown_method_is_a_configuration_error() -> None:
    with pytest.raises(InputError, match="no parser for method 'telepathy'"):
        parse_response("telepathy", "A", "AB")


# Well-formed answers take short cuts; the same answer wrapped in prose goes through every heuristic.
# Both must read the same distribution, whatever the quoting, keys and numbers.
RAW_VALUES = st.sampled_from(
    ["20", "0.25", "1e1", ".5", "5.", "'20%'", '"20%"', "null", "true", "None", "'n/a'"]
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(RAW_VALUES, min_size=2, max_size=5),
    st.sampled_from(["A", "Option A", "Option A's view"]),
    st.sampled_from(["'", '"']),
)
def test_a_bare_object_reads_as_the_same_object_inside_prose(values: list[str], key: str, quote: str) -> None:
    letters = "ABCDE"[: len(values)]
    labels = [f"Option {c}'s view" for c in letters]
    names = [key.replace("A", c) for c in letters]
    text = "{" + ", ".join(f"{quote}{n}{quote}: {v}" for n, v in zip(names, values, strict=True)) + "}"
    bare = parse_verbalized(text, letters, labels)
    wrapped = parse_verbalized(f"My estimate: {text} for this group.", letters, labels)
    assert (bare.status, bare.detail) == (wrapped.status, wrapped.detail)
    if bare.probs is not None:
        assert np.array_equal(bare.probs, wrapped.probs)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from("ABCDEab"), min_size=1, max_size=40), st.sampled_from(["", " ", ", "]))
def test_a_bare_sequence_reads_as_the_same_sequence_inside_prose(letters: list[str], sep: str) -> None:
    text = sep.join(letters)
    bare = parse_sequence(text, "ABCD", expected_len=30)
    wrapped = parse_sequence(f"here is my sequence:\n{text}\nthanks", "ABCD", expected_len=30)
    assert (bare.status, bare.detail) == (wrapped.status, wrapped.detail)
    if bare.probs is not None:
        assert np.array_equal(bare.probs, wrapped.probs)
