import numpy as np
import pytest

from distalign.methods.parsers import extract_final_answer, parse_letter, parse_letter_samples

LABELS = ["Strongly agree", "Agree", "Disagree", "Strongly disagree"]


@pytest.mark.parametrize(
    ("text", "index"),
    [
        ("B", 1),
        ("(B)", 1),
        ("B.", 1),
        ("b", 1),
        ("Answer: B", 1),
        ("The answer is C.", 2),
        ("Agree", 1),
        ("strongly agree.", 0),
        ("I would say Strongly disagree", 3),
        ("C. Disagree", 2),
        ("Option D", 3),
        ("A is tempting, B is not. Answer: (C)", 2),
        ("Thinking about A and B...<answer>D</answer>", 3),
        ("Thinking... <answer> Disagree </answer>", 2),
    ],
)
def test_single_answers(text: str, index: int) -> None:
    p = parse_letter(text, "ABCD", LABELS)
    assert p.status == "ok", p.detail
    assert int(np.argmax(p.probs)) == index and p.probs.sum() == 1


@pytest.mark.parametrize(
    "text", ["", "A or B?", "The answer is a tough one", "Agree or disagree, hard to say", "E"]
)
def test_ambiguous_or_missing_is_unparsed(text: str) -> None:
    assert parse_letter(text, "ABCD", LABELS).status == "unparsed"


def test_extract_final_answer() -> None:
    assert extract_final_answer("reasoning <answer> B </answer> trailing") == "B"
    assert extract_final_answer("<answer>A</answer> then <answer>C</answer>") == "C"
    assert extract_final_answer("so... Answer: D") == "D"
    assert extract_final_answer("[[B]]", start="[[", end="]]") == "B"
    assert extract_final_answer("no marker here") is None


def test_samples_give_the_empirical_distribution() -> None:
    p = parse_letter_samples(["A", "B", "B", "??", "Answer: C"], "ABCD")
    np.testing.assert_allclose(p.probs, [0.25, 0.5, 0.25, 0])
    assert (p.status, p.n_total, p.n_valid) == ("partial", 5, 4)
    assert parse_letter_samples(["A", "A"], "AB").status == "ok"
    assert parse_letter_samples(["?", "!"], "AB").status == "unparsed"
