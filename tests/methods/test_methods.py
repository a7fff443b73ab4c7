"""Each method's requests carry its documented settings, and parsing scripted results round-trips."""

from __future__ import annotations

import math

import numpy as np
import pytest

from distalign.errors import InputError
from distalign.methods.base import Method
from distalign.methods.registry import get_method, method_names
from distalign.prompts.render import PromptSpec, render_prompt
from distalign.records.config import SteeringConfig
from distalign.records.engine import (
    Capabilities,
    CapabilityError,
    GenerateRequest,
    GenerateResult,
    OptionLogprobRequest,
    OptionLogprobResult,
)
from distalign.survey.model import Item

ITEM = Item("opinionqa", "Q1", "Should cats vote?", ("Yes", "No", "Maybe", "Refused"), (1.0, 2.0, 3.0, None))
NO_N = Capabilities(n_samples=False)


def prompt(protocol: str = "benchmark", steering: str = "persona", fmt: str = "logprobs", **kw):
    return render_prompt(ITEM, "SEX", "Female", (), PromptSpec(protocol, steering, fmt, **kw))


def gen(*texts: str) -> GenerateResult:
    return GenerateResult(texts=texts)


def test_registry_names_aliases_and_errors() -> None:
    assert get_method("logp").name == "logprobs"
    for name in method_names():
        assert isinstance(get_method(name), Method)
    with pytest.raises(InputError, match="known: logprobs, seq, verbalize"):
        get_method("telepathy")
    with pytest.raises(InputError, match="'temprature'"):
        get_method("seq", temprature=0.5)
    with pytest.raises(InputError, match="paraphrase.*supervision"):
        get_method("paraphrase").prompt_spec(SteeringConfig("x", "benchmark", "persona"))
    with pytest.raises(InputError, match="n_respondents"):
        get_method("verbalize_then_sample", n_respondents=0)


def test_logprobs_request_and_parse() -> None:
    p = prompt()
    method = get_method("logprobs")
    (req,) = method.requests(p)
    assert isinstance(req, OptionLogprobRequest)
    assert req.candidates == ("A", "B", "C", "D") and req.assistant_prefix == "Answer:"
    assert req.messages == p.messages
    lp = [math.log(x) for x in (0.4, 0.3, 0.2, 0.1)]
    parsed = method.parse(p, [OptionLogprobResult(logprobs=tuple(lp))])
    assert parsed.status == "ok" and np.allclose(parsed.probs, [0.4, 0.3, 0.2, 0.1])
    missing = method.parse(p, [OptionLogprobResult(logprobs=(lp[0], None, lp[2], lp[3]))])
    assert missing.status == "partial" and "missing: B" in missing.detail and missing.probs[1] == 0
    assert not method.parse(p, [OptionLogprobResult(error="boom")]).extracted
    with pytest.raises(CapabilityError):
        method.requests(p, Capabilities(option_logprobs=False))


def test_seq_settings_and_parse() -> None:
    p = prompt(fmt="seq")
    method = get_method("seq")
    (req,) = method.requests(p)
    assert isinstance(req, GenerateRequest)
    s = req.params
    assert (s.temperature, s.max_tokens, s.min_tokens, s.n, s.allowed) == (
        1.0,
        30,
        30,
        1,
        ("A", "B", "C", "D"),
    )
    assert s.seed == 0 and req.assistant_prefix == "Answer:"
    parsed = method.parse(p, [gen("A" * 15 + "B" * 9 + "C" * 6)])
    assert np.allclose(parsed.probs, [0.5, 0.3, 0.2, 0.0])
    (api,) = method.requests(p, Capabilities(allowed_tokens=False))
    assert api.params.allowed is None and api.params.min_tokens == 0 and api.params.max_tokens >= 60


def test_verbalize_n3_averages_and_discards() -> None:
    p = prompt("supervision", "sd", "verbalize")
    method = get_method("verbalize")
    (req,) = method.requests(p)
    assert (req.params.n, req.params.temperature, req.params.max_tokens) == (3, 0.7, 200)
    texts = ('{"A": 50, "B": 50, "C": 0, "D": 0}', '{"A": 0.1, "B": 0.3, "C": 0.6, "D": 0}', "no idea")
    parsed = method.parse(p, [gen(*texts)])
    assert parsed.status == "partial" and (parsed.n_total, parsed.n_valid) == (3, 2)
    assert np.allclose(parsed.probs, [0.3, 0.4, 0.3, 0.0])
    one = get_method("verbalize", n=1)
    (r1,) = one.requests(p)
    assert (r1.params.n, r1.params.temperature) == (1, 0.0)


def test_verbalize_without_n_samples_splits_with_distinct_index_and_seed() -> None:
    p = prompt("supervision", "sd", "verbalize")
    reqs = get_method("verbalize", seed=7).requests(p, NO_N)
    assert [r.sample_index for r in reqs] == [0, 1, 2]
    assert [r.params.seed for r in reqs] == [7, 8, 9] and all(r.params.n == 1 for r in reqs)
    parsed = get_method("verbalize").parse(
        p, [gen('{"A": 100}'), gen('{"B": 100}'), GenerateResult(error="429")]
    )
    assert (
        parsed.status == "partial"
        and np.allclose(parsed.probs, [0.5, 0.5, 0, 0])
        and "failed" in parsed.detail
    )


def test_verbalize_cot_reads_the_marked_answer_and_gets_a_longer_budget() -> None:
    p = prompt("supervision", "sd", "verbalize", cot=True)
    method = get_method("verbalize", n=1)
    (req,) = method.requests(p)
    assert req.params.max_tokens == 800
    text = 'Maybe {"A": 100}? Thinking... <answer>{"A": 10, "B": 20, "C": 30, "D": 40}</answer>'
    assert np.allclose(method.parse(p, [gen(text)]).probs, [0.1, 0.2, 0.3, 0.4])


def test_self_random_is_one_request_with_five_samples() -> None:
    p = prompt("supervision", "base", "single")
    method = get_method("self_random", seed=3)
    (req,) = method.requests(p)
    assert (req.params.n, req.params.temperature, req.params.seed) == (5, 0.7, 3)
    assert req.assistant_prefix == "Answer:"
    parsed = method.parse(p, [gen("A", "B", "A", " A", "C")])
    assert np.allclose(parsed.probs, [0.6, 0.2, 0.2, 0.0])
    split = method.requests(p, NO_N)
    assert len(split) == 5 and len({(r.sample_index, r.params.seed) for r in split}) == 5


def test_paraphrase_asks_each_paraphrase_once() -> None:
    p = prompt("supervision", "sd", "single")
    method = get_method("paraphrase")
    reqs = method.requests(p)
    assert len(reqs) == 5 and len({r.messages for r in reqs}) == 5
    assert all(r.params.n == 1 and r.params.temperature == 0.0 for r in reqs)
    assert reqs[0].messages == p.messages
    parsed = method.parse(p, [gen(x) for x in ("A", "A", "B", "D", "A")])
    assert np.allclose(parsed.probs, [0.6, 0.2, 0.0, 0.2])


def test_cot_single_answer_between_markers() -> None:
    p = prompt("supervision", "sd", "single", cot=True)
    method = get_method("self_random", n=2)
    (req,) = method.requests(p)
    assert req.params.max_tokens == 800 and req.assistant_prefix == ""
    parsed = method.parse(p, [gen("A or B? I pick <answer>B</answer>", "Hmm. <answer>C</answer>")])
    assert np.allclose(parsed.probs, [0.0, 0.5, 0.5, 0.0])


def test_verbalize_then_sample_is_reproducible_by_seed() -> None:
    p = prompt(fmt="verbalize")
    text = '{"A": 40, "B": 30, "C": 20, "D": 10}'
    a = get_method("verbalize_then_sample", seed=1).parse(p, [gen(text)])
    b = get_method("verbalize_then_sample", seed=1).parse(p, [gen(text)])
    assert np.array_equal(a.probs, b.probs)
    assert np.allclose(a.probs * 30, np.round(a.probs * 30))  # 30 whole respondents
    draws = {
        tuple(get_method("verbalize_then_sample", seed=s).parse(p, [gen(text)]).probs) for s in range(10)
    }
    assert len(draws) > 1, "the seed must change the draw"
    many = get_method("verbalize_then_sample", n_respondents=100_000).parse(p, [gen(text)])
    assert np.allclose(many.probs, [0.4, 0.3, 0.2, 0.1], atol=0.01)
    assert not get_method("verbalize_then_sample").parse(p, [gen("???")]).extracted


@pytest.mark.parametrize(
    ("method", "params", "message"),
    [
        ("seq", {"seq_len": "five"}, "parameter 'seq_len' of method 'seq' must be int, got 'five' (str)"),
        ("self_random", {"n": 2.5}, "parameter 'n' of method 'self_random' must be int, got 2.5 (float)"),
        (
            "self_random",
            {"temperature": "hot"},
            "parameter 'temperature' of method 'self_random' must be float",
        ),
        ("verbalize", {"seed": "x"}, "parameter 'seed' of method 'verbalize' must be int or null"),
        ("paraphrase", {"n_paraphrases": True}, "must be int, got True (bool)"),
    ],
)
def test_a_parameter_of_the_wrong_type_is_named_with_its_type(
    method: str, params: dict, message: str
) -> None:
    with pytest.raises(InputError) as err:
        get_method(method, **params)
    assert message in str(err.value) and f"method.params.{next(iter(params))}" in str(err.value)


def test_parameters_of_the_right_type_are_accepted() -> None:
    assert get_method("self_random", temperature=1, seed=None).temperature == 1  # an int is a float
    assert get_method("verbalize", temperature=None).temperature is None
