import numpy as np
import pytest

from distalign.methods.parsers import parse_sequence


@pytest.mark.parametrize(
    "text",
    [
        "AABC",
        "A, A, B, C",
        "A A B C",
        "A\nA\nB\nC",
        "a, a, b, c",
        "1. A\n2. A\n3. B\n4. C",
        "A sequence of answers: A, A, B, C",
        "Here is my sequence:\nA, A, B, C\nI hope this helps.",
    ],
)
def test_separators_case_numbering_and_prose(text: str) -> None:
    p = parse_sequence(text, "ABCD", expected_len=4)
    assert p.status == "ok", p.detail
    np.testing.assert_allclose(p.probs, [0.5, 0.25, 0.25, 0])


def test_letters_outside_options_are_ignored_and_reported() -> None:
    p = parse_sequence("A B E E B", "ABC", expected_len=3)
    np.testing.assert_allclose(p.probs, [1 / 3, 2 / 3, 0])
    assert p.status == "partial" and "Ex2" in p.detail


def test_length_other_than_expected_is_partial() -> None:
    p = parse_sequence("A" * 10 + "B" * 10, "AB", expected_len=30)
    np.testing.assert_allclose(p.probs, [0.5, 0.5])
    assert p.status == "partial" and "20 letters" in p.detail


def test_thirty_letters_without_separators() -> None:
    text = "ABCDA" * 6
    p = parse_sequence(text, "ABCD")
    assert p.status == "ok"
    np.testing.assert_allclose(p.probs, [12 / 30, 6 / 30, 6 / 30, 6 / 30])


@pytest.mark.parametrize("text", ["", "I cannot do that.", "xyz", "E F G", "12345"])
def test_no_valid_letter_is_unparsed(text: str) -> None:
    assert parse_sequence(text, "ABCD").status == "unparsed"
