"""Integer-index answers 1..l (Kambhatla et al. 2025) in the forms models write them, through the parsers'
public functions and the methods that call them."""

from __future__ import annotations

import numpy as np
import pytest

from distalign.methods.parsers import (
    extract_final_answer,
    parse_letter,
    parse_letter_samples,
    parse_verbalized,
    parse_verbalized_many,
)
from distalign.methods.registry import get_method, parse_response
from distalign.prompts.presets import load_templates
from distalign.prompts.render import render_prompt
from distalign.records.config import SteeringConfig
from distalign.records.engine import GenerateResult, OptionLogprobRequest, OptionLogprobResult
from distalign.survey.model import Item

INDEX = ("1", "2", "3", "4")
LABELS = ("None", "A little", "Some", "A lot")


@pytest.mark.parametrize(
    "text",
    [
        "3",
        "3.",
        "Answer: 3",
        "Response: 3",
        "<ANS_START>3</ANS_END>",
        "<ANS_START>3 </ANS_END>",
        "<ANS_START>3<ANS_END>",
        "I would choose 3 (Some)",
        "I would choose 3",
        "Option 3 seems most likely.",
        "My response would be 3 because it is moderate.",
        "3) Some",
        "(3)",
        "**3**",
        "Some",
        "I considered 1 and 4 at first. <ANS_START>3</ANS_END>",
        "Reasoning about options 2 and 4...\nResponse: 3",
    ],
)
def test_index_answers(text: str) -> None:
    p = parse_letter(text, INDEX, LABELS)
    assert p.status == "ok", p.detail
    assert p.probs.tolist() == [0.0, 0.0, 1.0, 0.0]


@pytest.mark.parametrize(
    "text", ["1 or 2", "between 1 and 4", "1-2", "2 and 3", "7", "0", "2.5", "", "dunno"]
)
def test_ambiguous_or_out_of_range_stays_unparsed(text: str) -> None:
    assert parse_letter(text, INDEX, LABELS).status == "unparsed"


def test_numbers_inside_echoed_labels_do_not_count() -> None:
    labels = ("15-24 years", "25-34 years", "35 years or older")
    assert parse_letter("2 (25-34 years)", ("1", "2", "3"), labels).probs.tolist() == [0, 1, 0]
    assert parse_letter("35 years or older", ("1", "2", "3"), labels).probs.tolist() == [0, 0, 1]
    assert parse_letter("10", ("1", "2", "3"), labels).status == "unparsed"


def test_letter_prompts_still_read_letters_only() -> None:
    assert parse_letter("3", "ABCD", LABELS).status == "unparsed"
    assert parse_letter("Answer: C", "ABCD", LABELS).probs.tolist() == [0, 0, 1, 0]
    assert extract_final_answer("<ANS_START> B </ANS_END> and more") == "B"


def test_self_random_samples_of_indices() -> None:
    p = parse_letter_samples(["3", "Answer: 1", "<ANS_START>3</ANS_END>", "1 or 2", "4."], INDEX, LABELS)
    np.testing.assert_allclose(p.probs, [0.25, 0, 0.5, 0.25])
    assert (p.status, p.n_total, p.n_valid) == ("partial", 5, 4)
    assert parse_response("self_random", ["2", "2"], INDEX, LABELS).probs.tolist() == [0, 1, 0, 0]


@pytest.mark.parametrize(
    ("text", "probs"),
    [
        ("[20, 30, 40, 10]", [0.2, 0.3, 0.4, 0.1]),
        ("Response: [20, 30, 40, 10]", [0.2, 0.3, 0.4, 0.1]),
        ("[25%, 25%, 25%, 25%]", [0.25, 0.25, 0.25, 0.25]),
        ("[0.1, 0.2, 0.3, 0.4]", [0.1, 0.2, 0.3, 0.4]),
        ("[30, 30, 30, 30]", [0.25, 0.25, 0.25, 0.25]),  # sums to 120: renormalised
        ("[10, 10, 20, 10]", [0.2, 0.2, 0.4, 0.2]),  # sums to 50
        ('{"1": 20, "2": 30, "3": 40, "4": 10}', [0.2, 0.3, 0.4, 0.1]),
        ("Steps... <ANS_START>[40, 30, 20, 10]</ANS_END>", [0.4, 0.3, 0.2, 0.1]),
    ],
)
def test_verbalized_lists_of_l_numbers(text: str, probs: list[float]) -> None:
    p = parse_verbalized(text, INDEX, LABELS)
    assert p.extracted, p.detail
    np.testing.assert_allclose(p.probs, probs)


@pytest.mark.parametrize("text", ["[20, 30, 40]", "[, , , ,]", "[20, 30, 40, 10, 5]", "[-10, 50, 30, 30]"])
def test_verbalized_lists_of_the_wrong_shape_are_unparsed(text: str) -> None:
    assert parse_verbalized(text, INDEX, LABELS).status == "unparsed"


def test_verbalized_n3_discards_and_averages() -> None:
    p = parse_verbalized_many(["[20, 30, 40, 10]", "no idea", "[40, 30, 20, 10]"], INDEX, LABELS)
    np.testing.assert_allclose(p.probs, [0.3, 0.3, 0.3, 0.1])
    assert (p.status, p.n_valid, p.n_total) == ("partial", 2, 3)


def test_logprobs_keyed_by_index_tokens() -> None:
    p = parse_response("logprobs", {"1": -2.0, "2": -1.0, "3": -0.5}, INDEX)
    assert p.status == "partial" and "missing: 4" in p.detail
    assert p.probs[3] == 0 and p.probs[2] > p.probs[1] > p.probs[0]


ITEM = Item("opinionqa", "q1", "How much?", LABELS, (1.0, 2.0, 3.0, 4.0))


def _prompt(method: str):
    spec = get_method(method).prompt_spec(SteeringConfig("x", "supervision", "sd"))
    return render_prompt(ITEM, "SEX", "Female", (), spec, load_templates("kambhatla2025"))


def test_the_methods_ask_for_and_read_the_index_tokens() -> None:
    """Log-p asks for the prompt's own symbols; self-random and verbalized read index answers."""
    logprobs = get_method("logprobs")
    prompt = _prompt("logprobs")
    (request,) = logprobs.requests(prompt)
    assert isinstance(request, OptionLogprobRequest) and request.candidates == INDEX
    parsed = logprobs.parse(prompt, [OptionLogprobResult((-1.0, -1.0, None, -1.0))])
    assert parsed.status == "partial" and "missing: 3" in parsed.detail
    self_random = get_method("self_random")
    answers = GenerateResult(texts=("2", "2", "Response: 4", "<ANS_START>2</ANS_END>", "7"))
    parsed = self_random.parse(_prompt("self_random"), [answers])
    np.testing.assert_allclose(parsed.probs, [0, 0.75, 0, 0.25])
    verbalize = get_method("verbalize")
    parsed = verbalize.parse(_prompt("verbalize"), [GenerateResult(texts=("[10, 20, 30, 40]",) * 3)])
    np.testing.assert_allclose(parsed.probs, [0.1, 0.2, 0.3, 0.4])
