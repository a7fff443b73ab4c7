import numpy as np
import pytest

from distalign.methods.parsers import parse_verbalized, parse_verbalized_many

LETTERS = "ABCD"
LABELS = ["Strongly agree", "Agree", "Disagree", "Strongly disagree"]
TARGET = [0.2, 0.3, 0.4, 0.1]


@pytest.mark.parametrize(
    "text",
    [
        '{"A": 20, "B": 30, "C": 40, "D": 10}',
        '{"A": 0.2, "B": 0.3, "C": 0.4, "D": 0.1}',
        "{'A': 0.2, 'B': 0.3, 'C': 0.4, 'D': 0.1}",
        '{"A": 20, "B": 30, "C": 40, "D": 10,}',
        '{"A": "20%", "B": "30%", "C": "40%", "D": "10%"}',
        '{"A": 20%, "B": 30%, "C": 40%, "D": 10%}',
        "A: 20%\nB: 30%\nC: 40%\nD: 10%",
        "A) 20\nB) 30\nC) 40\nD) 10",
        "(A): 20\n(B): 30\n(C): 40\n(D): 10",
        '{"Option A": 0.2, "Option B": 0.3, "Option C": 0.4, "Option D": 0.1}',
        '{"Strongly agree": 20, "Agree": 30, "Disagree": 40, "Strongly disagree": 10}',
        '{"a": 2, "b": 3, "c": 4, "d": 1}',
        "[20, 30, 40, 10]",
        'Here you go:\n```json\n{"A": 20, "B": 30, "C": 40, "D": 10}\n```\nThese are estimates.',
        'I estimate {"A": 20, "B": 30, "C": 40, "D": 10} for this group.',
        '{"A": 40, "B": 60, "C": 80, "D": 20}',
    ],
)
def test_formats_seen_in_practice(text: str) -> None:
    p = parse_verbalized(text, LETTERS, LABELS)
    assert p.status == "ok", p.detail
    np.testing.assert_allclose(p.probs, TARGET)


def test_fractional_percentages() -> None:
    p = parse_verbalized('{"A": "12.5%", "B": "37.5%", "C": "25%", "D": "25%"}', LETTERS)
    np.testing.assert_allclose(p.probs, [0.125, 0.375, 0.25, 0.25])
    assert "percent" in p.detail


def test_unknown_keys_are_ignored_and_reported() -> None:
    p = parse_verbalized('{"A": 50, "B": 50, "C": 0, "D": 0, "E": 30}', LETTERS)
    np.testing.assert_allclose(p.probs, [0.5, 0.5, 0, 0])
    assert "'E'" in p.detail


def test_missing_options_get_zero_and_are_partial() -> None:
    p = parse_verbalized('{"A": 70, "C": 30}', LETTERS)
    np.testing.assert_allclose(p.probs, [0.7, 0, 0.3, 0])
    assert p.status == "partial" and "B, D" in p.detail


def test_object_naming_most_options_wins() -> None:
    text = 'Format: {"A": 100}. My answer: {"A": 10, "B": 20, "C": 30, "D": 40}'
    np.testing.assert_allclose(parse_verbalized(text, LETTERS).probs, [0.1, 0.2, 0.3, 0.4])


@pytest.mark.parametrize(
    "text",
    ['{"A": 0, "B": 0, "C": 0, "D": 0}', '{"A": -10, "B": 110}', "I cannot answer that.", "", '{"E": 100}'],
)
def test_unparsed(text: str) -> None:
    p = parse_verbalized(text, LETTERS)
    assert p.status == "unparsed" and p.probs is None and p.detail


def test_label_that_starts_like_a_letter_maps_to_its_label() -> None:
    labels = ["A great deal", "Some", "Not at all"]
    p = parse_verbalized('{"A great deal": 10, "Some": 30, "Not at all": 60}', "ABC", labels)
    np.testing.assert_allclose(p.probs, [0.1, 0.3, 0.6])


def test_many_averages_parsed_and_discards_the_rest() -> None:
    p = parse_verbalized_many(['{"A": 100, "B": 0}', "no idea", '{"A": 0, "B": 100}'], "AB")
    np.testing.assert_allclose(p.probs, [0.5, 0.5])
    assert (p.status, p.n_total, p.n_valid) == ("partial", 3, 2)


def test_many_all_parsed_is_ok_and_none_parsed_is_unparsed() -> None:
    ok = parse_verbalized_many(['{"A": 60, "B": 40}', '{"A": 0.2, "B": 0.8}'], "AB")
    np.testing.assert_allclose(ok.probs, [0.4, 0.6])
    assert (ok.status, ok.n_total, ok.n_valid) == ("ok", 2, 2)
    bad = parse_verbalized_many(["x", "y", "z"], "AB")
    assert (bad.status, bad.n_total, bad.n_valid) == ("unparsed", 3, 0)
