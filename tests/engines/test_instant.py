"""The instant engine is deterministic per request and shaped like a real engine's answers."""

from __future__ import annotations

import json

import numpy as np
import pytest

from distalign.engines.base import Engine
from distalign.engines.instant import InstantEngine
from distalign.records.engine import (
    GenerateRequest,
    Message,
    ModelIdentity,
    OptionLogprobRequest,
    SamplingParams,
)

IDENT = ModelIdentity(name="instant", weights="instant")
PROMPT = (Message("user", "Which?\nA. Yes\nB. No\nC. Refused"),)


def _lp(text: str = "Which?\nA. Yes\nB. No", cands: tuple[str, ...] = ("A", "B")) -> OptionLogprobRequest:
    return OptionLogprobRequest(
        messages=(Message("user", text),), candidates=cands, assistant_prefix="Answer:"
    )


def test_is_an_engine() -> None:
    assert isinstance(InstantEngine(IDENT), Engine)


def test_option_logprobs_are_a_distribution_and_deterministic() -> None:
    eng = InstantEngine(IDENT)
    reqs = [_lp(), _lp("other question\nA. x\nB. y\nC. z", ("A", "B", "C"))]
    first = eng.option_logprobs(reqs)
    again = InstantEngine(IDENT).option_logprobs(list(reversed(reqs)))[::-1]
    assert first == again
    for res, req in zip(first, reqs, strict=True):
        assert len(res.logprobs) == len(req.candidates)
        assert np.isclose(np.exp(res.logprobs).sum(), 1.0)
    assert first[0].logprobs != first[1].logprobs[:2]


def test_seed_and_identity_change_answers() -> None:
    base = InstantEngine(IDENT).option_logprobs([_lp()])[0].logprobs
    assert InstantEngine(IDENT, seed=1).option_logprobs([_lp()])[0].logprobs != base
    other = ModelIdentity(name="other", weights="instant")
    assert InstantEngine(other).option_logprobs([_lp()])[0].logprobs != base


def test_generate_allowed_sequence() -> None:
    params = SamplingParams(temperature=1.0, max_tokens=30, min_tokens=30, allowed=("A", "B", "C"))
    res = InstantEngine(IDENT).generate([GenerateRequest(messages=PROMPT, params=params)])[0]
    tokens = res.texts[0].split()
    assert len(tokens) == 30 and set(tokens) <= {"A", "B", "C"}


def test_generate_json_over_prompt_letters_and_n_samples() -> None:
    params = SamplingParams(temperature=1.0, max_tokens=200, n=3)
    res = InstantEngine(IDENT).generate([GenerateRequest(messages=PROMPT, params=params)])[0]
    assert len(res.texts) == 3 and len(set(res.texts)) == 3
    for text in res.texts:
        d = json.loads(text)
        assert set(d) == {"A", "B", "C"} and sum(d.values()) == 100


def test_generate_short_answer_is_one_letter_and_sample_index_matters() -> None:
    eng = InstantEngine(IDENT)
    answers = {
        eng.generate([GenerateRequest(messages=PROMPT, params=SamplingParams(max_tokens=2), sample_index=i)])[
            0
        ].texts[0]
        for i in range(20)
    }
    assert answers <= {"A", "B", "C"} and len(answers) > 1


def test_a_negative_simulated_delay_is_named() -> None:
    from distalign.engines.registry import check_serving
    from distalign.errors import InputError
    from distalign.records.config import ModelConfig, serving

    model = ModelConfig(name="sim", weights="instant", serving=serving("instant", delay_s=-1))
    with pytest.raises(InputError, match="seconds >= 0") as err:
        check_serving(model)
    assert "serving.delay_s" in str(err.value)


def _kambhatla_answers(spec, examples=()) -> tuple[list[str], tuple[str, ...]]:
    """The instant engine's answers to the supervision paper's rendered prompts (every paraphrase)."""
    from distalign.prompts.presets import load_templates
    from distalign.prompts.render import PromptSpec, render_prompt
    from distalign.survey.model import Item

    item = Item("opinionqa", "q1", "Which priority?", ("Top", "Some", "None", "Refused"), (1, 2, 3, None))
    prompt = render_prompt(
        item, "SEX", "Female", examples, PromptSpec(*spec[:3], **spec[3]), load_templates("kambhatla2025")
    )
    eng = InstantEngine(IDENT)
    params = SamplingParams(max_tokens=8, n=5)
    texts = [
        t
        for v in prompt.variants
        for t in eng.generate([GenerateRequest(messages=v, params=params)])[0].texts
    ]
    return texts, prompt.letters


def test_supervision_index_prompts_get_an_index_in_range() -> None:
    from distalign.methods.parsers import parse_letter

    texts, letters = _kambhatla_answers(("supervision", "sd", "single", {}))
    assert letters == ("1", "2", "3", "4") and {int(t) for t in texts} <= {1, 2, 3, 4}
    assert all(parse_letter(t, letters).status == "ok" for t in texts)


def test_supervision_list_and_cot_prompts_get_their_formats() -> None:
    from distalign.methods.parsers import parse_letter, parse_verbalized

    texts, letters = _kambhatla_answers(("supervision", "sd", "verbalize", {}))
    for text in texts:
        values = json.loads(text)
        assert len(values) == 4 and sum(values) == 100
        assert parse_verbalized(text, letters).status == "ok"
    cot, letters = _kambhatla_answers(("supervision", "sd", "single", {"cot": True}))
    assert all("<ANS_START>" in t and t.endswith("</ANS_END>") for t in cot)
    assert all(parse_letter(t, letters).status == "ok" for t in cot)
