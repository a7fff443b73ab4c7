"""The sweep and ``distalign score`` parse a raw answer with the same function: for every method, the
distribution a sweep gets from engine results equals the one ``parse_response`` gets from the same texts
(chain-of-thought answers and verbalize-then-sample's respondent draw included)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from distalign.methods.registry import METHODS, get_method, parse_response
from distalign.prompts.render import RenderedPrompt
from distalign.records.engine import GenerateResult, Message, OptionLogprobResult

LETTERS = ("A", "B", "C", "D")
LABELS = ("Agree", "Neutral", "Disagree", "Refused")
TEXTS: dict[str, list[str]] = {
    "verbalize": [
        '{"A": 50, "B": 30, "C": 15, "D": 5}',
        'Let me think. Many agree, some do not.\n<answer>{"A": 0.2, "B": 0.5, "C": 0.3, "D": 0}</answer>',
        "nonsense",
    ],
    "verbalize_then_sample": [
        "Reasoning first: A looks likely.\n<answer>A: 40%, B: 40%, C: 20%, D: 0%</answer>",
    ],
    "seq": ["A B A C A B B A D A", "ABACXABBAD"],
    "self_random": ["A", "The answer is B", "<answer>C</answer>", "???", "A"],
    "paraphrase": ["B", "B", "Answer: C", "I would pick A", "D"],
}


def _prompt(cot: bool) -> RenderedPrompt:
    messages = (Message("user", "Q?"),)
    return RenderedPrompt(messages, "Answer:", LETTERS, LABELS, (messages,) * 5, cot=cot)


def _same(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    return (a is None and b is None) or (a is not None and b is not None and np.array_equal(a, b))


@pytest.mark.parametrize("cot", [False, True], ids=["plain", "cot"])
@pytest.mark.parametrize("name", sorted(set(METHODS) - {"logprobs"}))
def test_text_methods_parse_alike(name: str, cot: bool) -> None:
    method = get_method(name)
    for k in range(1, len(TEXTS[name]) + 1):
        texts = TEXTS[name][:k]
        via_sweep = method.parse(_prompt(cot), [GenerateResult(texts=tuple(texts))])
        via_score = parse_response(name, texts, LETTERS, LABELS)
        assert via_sweep.status == via_score.status, (name, texts)
        assert _same(via_sweep.probs, via_score.probs), (name, texts, via_sweep, via_score)


def test_chain_of_thought_is_read_from_its_marker_in_a_file_too() -> None:
    text = TEXTS["verbalize"][1]  # the reasoning mentions no numbers; the answer is between markers
    parsed = parse_response("verbalize", text, LETTERS, LABELS)
    assert parsed.probs is not None and np.allclose(parsed.probs, [0.2, 0.5, 0.3, 0.0])


def test_verbalize_then_sample_draws_respondents_in_both_paths() -> None:
    text = TEXTS["verbalize_then_sample"][0]
    drawn = parse_response("verbalize_then_sample", text, LETTERS, LABELS)
    stated = parse_response("verbalize", text, LETTERS, LABELS)
    assert drawn.probs is not None and stated.probs is not None
    assert not np.allclose(drawn.probs, stated.probs)  # 30 respondents: multiples of 1/30
    assert np.allclose(drawn.probs * 30, np.round(drawn.probs * 30))


def test_logprobs_parse_alike() -> None:
    logprobs = (math.log(0.5), None, math.log(0.2), math.log(0.1))
    via_sweep = get_method("logprobs").parse(_prompt(False), [OptionLogprobResult(logprobs=logprobs)])
    via_score = parse_response("logprobs", {"A": logprobs[0], "C": logprobs[2], "D": logprobs[3]}, LETTERS)
    assert via_sweep.status == via_score.status == "partial"
    assert np.array_equal(via_sweep.probs, via_score.probs)
