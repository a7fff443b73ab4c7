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


@pytest.mark.parametrize(
    ("unspaced", "spaced"),
    [
        ("AABXCA", "A A B X C A"),
        ("ABCDEABCDA", "A B C D E A B C D A"),
        (
            "Here you go: DCCXADACCDCCADCCCDDAZCCDADCADAC",
            "D C C X A D A C C D C C A D C C C D D A Z C C D A D C A D A C",
        ),
    ],
)
def test_letters_outside_options_without_separators_are_ignored_as_when_spaced(unspaced, spaced) -> None:
    got, want = parse_sequence(unspaced, "ABCD"), parse_sequence(spaced, "ABCD")
    assert got.status == want.status == "partial" and got.detail == want.detail and "ignored" in got.detail
    np.testing.assert_allclose(got.probs, want.probs)


def test_upper_case_prose_words_are_not_a_sequence() -> None:
    p = parse_sequence("OK, here: A B B C", "ABCD", expected_len=4)
    assert p.status == "ok"
    np.testing.assert_allclose(p.probs, [0.25, 0.5, 0.25, 0])
