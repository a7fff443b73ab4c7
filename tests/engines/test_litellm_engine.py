"""The litellm engine against a real OpenAI-protocol server on loopback (tests/engines/openai_stub.py)."""

from __future__ import annotations

import asyncio
import email.utils
import math
import pickle
import threading
import time
from collections import Counter

import pytest

from distalign.engines.base import Engine
from distalign.engines.litellm_engine import LiteLLMEngine, match_candidates, retry_after_of
from distalign.engines.ratelimit import retry_after_seconds
from distalign.errors import InputError
from distalign.records.engine import (
    CapabilityError,
    GenerateRequest,
    Message,
    ModelIdentity,
    OptionLogprobRequest,
    SamplingParams,
)
from tests.engines.openai_stub import Fault, OpenAIStub, openai_stub_fixture  # noqa: F401
from tests.engines.virtual_time import VirtualTime

SECRET = "sk-test-TOPSECRET-0123456789"
MODELS = ["openai/stub", "hosted_vllm/stub"]


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISTALIGN_TEST_KEY", SECRET)


def make(stub: OpenAIStub, model: str = "openai/stub", **kw: object) -> LiteLLMEngine:
    settings: dict[str, object] = dict(
        api_base=stub.base_url, api_key_env="DISTALIGN_TEST_KEY", backoff_base_s=0.0, timeout_s=10.0
    )
    settings.update(kw)
    return LiteLLMEngine(ModelIdentity(name="stub", weights=model), **settings)  # type: ignore[arg-type]


def ask(text: str, **params: object) -> GenerateRequest:
    return GenerateRequest(messages=(Message("user", text),), params=SamplingParams(**params))  # type: ignore[arg-type]


@pytest.fixture(scope="module", autouse=True)
def warm_client() -> None:
    """The first call through litellm imports provider modules lazily (seconds on a busy CI box); pay
    that once so the timeout tests measure the server, not the import."""
    stub = OpenAIStub().start()
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("DISTALIGN_TEST_KEY", SECRET)
            for model in MODELS:
                make(stub, model).generate([ask("warm")])
    finally:
        stub.stop()


# --- pure helpers ---------------------------------------------------------------------------------
def test_match_candidates_strips_whitespace_and_reports_missing_as_none() -> None:
    top = [("A", -0.5), (" A", -2.0), (" B", -1.5), ("b", -0.1), ("C", -3.0)]
    got = match_candidates(top, ["A", "B", "D"])
    assert got[0] == pytest.approx(math.log(math.exp(-0.5) + math.exp(-2.0)))
    assert got[1] == pytest.approx(-1.5)  # lower-case "b" is a different answer
    assert got[2] is None


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "3"}, 3.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        ({"Retry-After": "Wed, 21 Oct 2015 07:28:30 GMT"}, 30.0),
        ({"Retry-After": "Wed, 21 Oct 2015 07:27:00 GMT"}, 0.0),
        ({"Retry-After": "soon"}, None),
        ({}, None),
        (None, None),
    ],
)
def test_retry_after_seconds_reads_seconds_and_http_dates(
    headers: dict | None, expected: float | None
) -> None:
    now = 1445412480.0  # Wed, 21 Oct 2015 07:28:00 GMT
    assert retry_after_seconds(headers, now=now) == expected


class _Raised(Exception):
    def __init__(self, **attrs: object) -> None:
        super().__init__("raised")
        self.__dict__.update(attrs)


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (_Raised(litellm_response_headers={"retry-after": "7"}), 7.0),
        (_Raised(headers={"Retry-After": "2"}, response=None), 2.0),
        (_Raised(response=_Raised(headers={"retry-after-ms": "1500"})), 1.5),
        (_Raised(litellm_response_headers=None, response=_Raised(headers={})), None),
        (_Raised(headers="not headers"), None),
        (ValueError("plain"), None),
        (None, None),
    ],
)
def test_retry_after_is_read_from_litellms_exception_attributes(
    exc: BaseException | None, expected: float | None
) -> None:
    assert retry_after_of(exc) == expected


# --- batches, ordering, exactly-once ----------------------------------------------------------------
@pytest.mark.parametrize("model", MODELS)
def test_concurrent_batch_answers_every_prompt_exactly_once_in_order(
    openai_stub: OpenAIStub, model: str
) -> None:
    engine = make(openai_stub, model, max_concurrency=6)
    assert isinstance(engine, Engine)
    prompts = [f"prompt-{i:03d}" for i in range(40)]
    results = engine.generate([ask(p) for p in prompts])
    assert [r.texts for r in results] == [(f"echo:{p}",) for p in prompts]
    assert Counter(r.prompt for r in openai_stub.received) == Counter(prompts)
    assert engine.stats()["requests"] == 40 and engine.stats()["retries"] == 0


def test_generate_sends_every_sampling_parameter_and_returns_n_samples(openai_stub: OpenAIStub) -> None:
    engine = make(openai_stub)
    params = dict(n=3, temperature=0.7, top_p=0.9, max_tokens=12, stop=("\n",), seed=7)
    [result] = engine.generate([ask("sample me", **params)])
    assert result.texts == tuple(f"echo:sample me#{i}" for i in range(3))
    body = openai_stub.received[-1].body
    assert {k: body[k] for k in ("n", "temperature", "top_p", "max_tokens", "stop", "seed")} == {
        "n": 3,
        "temperature": 0.7,
        "top_p": 0.9,
        "max_tokens": 12,
        "stop": ["\n"],
        "seed": 7,
    }


def test_allowed_strings_become_a_structured_output_regex_on_vllm(openai_stub: OpenAIStub) -> None:
    engine = make(openai_stub, "hosted_vllm/stub")
    engine.generate([ask("letters", allowed=("A", "B", "C"), min_tokens=30, max_tokens=30)])
    body = openai_stub.received[-1].body
    assert body["structured_outputs"] == {"regex": "(?:A|B|C){30,30}"}
    assert body["min_tokens"] == 30


def test_n_samples_where_the_model_config_says_n_is_missing_is_refused_before_any_call(
    openai_stub: OpenAIStub,
) -> None:
    engine = make(openai_stub, capabilities={"n_samples": False})
    with pytest.raises(CapabilityError, match="n_samples"):
        engine.generate([ask("one"), ask("five", n=5)])
    assert openai_stub.received == []


def test_log_probs_on_anthropic_are_refused_before_any_call(openai_stub: OpenAIStub) -> None:
    engine = make(openai_stub, "anthropic/claude-3-5-sonnet-20240620")
    request = OptionLogprobRequest(messages=(Message("user", "Q"),), candidates=("A", "B"))
    with pytest.raises(CapabilityError, match="option_logprobs"):
        engine.option_logprobs([request])
    assert openai_stub.received == []


# --- option log-probs -------------------------------------------------------------------------------
def test_option_logprobs_map_top_logprobs_to_candidates(openai_stub: OpenAIStub) -> None:
    openai_stub.top_logprobs = {"A": -0.4, " B": -1.2, "C": -2.0, " A": -3.0, "Z": -5.0}
    engine = make(openai_stub)
    request = OptionLogprobRequest(messages=(Message("user", "Q?"),), candidates=("A", "B", "D"))
    [result] = engine.option_logprobs([request])
    assert result.ok
    assert result.logprobs[0] == pytest.approx(math.log(math.exp(-0.4) + math.exp(-3.0)))
    assert result.logprobs[1] == pytest.approx(-1.2)
    assert result.logprobs[2] is None
    body = openai_stub.received[-1].body
    assert (body["max_tokens"], body["temperature"], body["logprobs"], body["top_logprobs"]) == (
        1,
        0.0,
        True,
        20,
    )


def test_assistant_prefix_is_continued_on_vllm_and_appended_to_the_prompt_elsewhere(
    openai_stub: OpenAIStub,
) -> None:
    request = OptionLogprobRequest(
        messages=(Message("user", "Q?"),), candidates=("A",), assistant_prefix="Answer: "
    )
    make(openai_stub, "hosted_vllm/stub").option_logprobs([request])
    vllm = openai_stub.received[-1].body
    assert vllm["messages"][-1] == {"role": "assistant", "content": "Answer: "}
    assert (vllm["continue_final_message"], vllm["add_generation_prompt"]) == (True, False)
    make(openai_stub, "openai/stub").option_logprobs([request])
    openai = openai_stub.received[-1].body
    assert openai["messages"] == [{"role": "user", "content": "Q?\nAnswer:"}]
    assert "continue_final_message" not in openai


def test_a_response_without_logprobs_is_a_recorded_failure(openai_stub: OpenAIStub) -> None:
    openai_stub.top_logprobs = {}
    openai_stub.on_marker("NOLP", Fault(body='{"id": "x", "object": "chat.completion", "choices": []}'))
    engine = make(openai_stub)
    requests = [
        OptionLogprobRequest(messages=(Message("user", t),), candidates=("A",)) for t in ("NOLP", "ok")
    ]
    results = engine.option_logprobs(requests)
    assert [r.ok for r in results] == [False, False]
    assert all(r.error.startswith("malformed") for r in results)  # type: ignore[union-attr]
    assert engine.stats()["retries"] == 0


# --- failures are data, retries are bounded -----------------------------------------------------------
def test_429_with_retry_after_pauses_the_whole_account_then_succeeds(openai_stub: OpenAIStub) -> None:
    vt = VirtualTime()
    openai_stub.clock = vt.clock
    openai_stub.script(Fault.rate_limited("1"))
    engine = make(openai_stub, max_concurrency=1, clock=vt.clock, sleep=vt.sleep)
    results = engine.generate([ask(f"r{i}") for i in range(3)])
    assert [r.texts for r in results] == [(f"echo:r{i}",) for i in range(3)]
    limited, *after = openai_stub.received
    assert limited.fault is not None and limited.status == 429 and limited.at == 0.0
    assert len(after) == 3  # the refused one again, plus the two others
    assert min(r.at for r in after) == pytest.approx(1.0)  # nobody was sent before the second had passed
    stats = engine.stats()
    assert (stats["rate_limited"], stats["retries"], stats["failures"]) == (1, 1, 0)


def test_retry_after_is_read_from_the_http_date_form_too(openai_stub: OpenAIStub) -> None:
    vt = VirtualTime()
    when = time.time() + 30.0  # an HTTP date 30 s ahead (whole seconds, so 29 < wait <= 30)
    openai_stub.on_marker("DATED", Fault.rate_limited(email.utils.formatdate(when, usegmt=True)))
    [result] = make(openai_stub, clock=vt.clock, sleep=vt.sleep).generate([ask("DATED")])
    assert result.texts == ("echo:DATED",)
    assert 20.0 < vt.now <= 30.0


def test_retry_after_longer_than_backoff_max_fails_fast(openai_stub: OpenAIStub) -> None:
    vt = VirtualTime()
    openai_stub.on_marker("LONG", Fault.rate_limited("3600"))
    engine = make(openai_stub, backoff_max_s=5.0, clock=vt.clock, sleep=vt.sleep)
    [result] = engine.generate([ask("LONG")])
    assert vt.now == 0.0  # it did not wait at all
    assert result.error is not None and "3600" in result.error and result.error.startswith("rate_limited")
    assert openai_stub.hits("LONG") == 1


def test_a_refused_retry_after_pauses_no_other_request_of_the_account(openai_stub: OpenAIStub) -> None:
    """One request is told to come back in an hour and fails fast; the requests in flight beside it are
    answered 503 once it has failed (the gate), are retried at once and succeed: none waits for the hour."""
    vt = VirtualTime()
    gate = threading.Event()
    others = [f"other-{i}" for i in range(5)]
    openai_stub.on_marker("LONG", Fault.rate_limited("3600"))
    for marker in others:
        openai_stub.on_marker(marker, Fault(status=503, gate=gate))
    engine = make(openai_stub, backoff_max_s=60.0, max_concurrency=8, clock=vt.clock, sleep=vt.sleep)

    async def main() -> tuple[list, list]:
        rest = asyncio.create_task(engine.agenerate([ask(m) for m in others]))
        failed = await engine.agenerate([ask("LONG")])
        gate.set()
        return failed, await rest

    [failed], answered = asyncio.run(main())
    assert failed.error is not None and failed.error.startswith("rate_limited") and "3600" in failed.error
    assert [r.texts for r in answered] == [(f"echo:{m}",) for m in others]
    assert [openai_stub.hits(m) for m in others] == [2] * 5 and openai_stub.hits("LONG") == 1
    assert vt.now < 60.0  # the hour was never waited for, by anybody


@pytest.mark.parametrize("model", MODELS)
def test_500_is_retried_max_retries_times_then_recorded_while_the_batch_succeeds(
    openai_stub: OpenAIStub, model: str
) -> None:
    openai_stub.on_marker("BROKEN", Fault.server_error(500), always=True)
    engine = make(openai_stub, model, max_retries=2)
    prompts = ["a", "b", "BROKEN", "c", "d"]
    results = engine.generate([ask(p) for p in prompts])
    assert [r.ok for r in results] == [True, True, False, True, True]
    assert results[2].error is not None and results[2].error.startswith("server_error")
    assert openai_stub.hits("BROKEN") == 3  # one try + max_retries
    assert [r.texts for i, r in enumerate(results) if i != 2] == [(f"echo:{p}",) for p in "abcd"]
    stats = engine.stats()
    assert (stats["retries"], stats["failures"], stats["requests"]) == (2, 1, 7)


def test_a_transient_500_is_retried_and_succeeds(openai_stub: OpenAIStub) -> None:
    openai_stub.on_marker("ONCE", Fault.server_error(503))
    [result] = make(openai_stub).generate([ask("ONCE")])
    assert result.texts == ("echo:ONCE",)
    assert openai_stub.hits("ONCE") == 2


def test_unreachable_server_is_retried_then_recorded() -> None:
    engine = LiteLLMEngine(
        ModelIdentity("gone", "hosted_vllm/stub"),
        api_base="http://127.0.0.1:9/v1",
        max_retries=1,
        backoff_base_s=0,
    )
    [result] = engine.generate([ask("anyone there?")])
    assert result.error is not None and result.error.split(":")[0] in {"connection", "server_error"}
    assert (engine.stats()["requests"], engine.stats()["failures"]) == (2, 1)


def test_other_4xx_is_not_retried(openai_stub: OpenAIStub) -> None:
    openai_stub.on_marker("BADREQ", Fault(status=400), always=True)
    [result] = make(openai_stub, max_retries=3).generate([ask("BADREQ")])
    assert result.error is not None and result.error.startswith("client_error")
    assert openai_stub.hits("BADREQ") == 1


@pytest.mark.parametrize("model", MODELS)
def test_timeouts_are_retried_then_recorded(openai_stub: OpenAIStub, model: str) -> None:
    openai_stub.on_marker("SLOW", Fault.slow(30), always=True)
    engine = make(openai_stub, model, timeout_s=0.5, max_retries=1)
    results = engine.generate([ask("SLOW"), ask("fast")])
    assert results[0].error is not None and results[0].error.startswith("timeout")
    assert results[1].texts == ("echo:fast",)
    assert engine.stats()["timeouts"] == 2
    # the client gives up after 0.5 s; on a loaded machine the stub may read the retry's request later
    deadline = time.monotonic() + 10
    while openai_stub.hits("SLOW") < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert openai_stub.hits("SLOW") == 2


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("body", [None, "<html>bad gateway</html>", '{"id": "x", "choices": []}'])
def test_malformed_body_is_a_recorded_failure_without_retry(
    openai_stub: OpenAIStub, model: str, body: str | None
) -> None:
    openai_stub.on_marker("MANGLED", Fault(malformed=True, body=body), always=True)
    results = make(openai_stub, model, max_retries=3).generate([ask("MANGLED"), ask("fine")])
    assert results[0].error is not None and results[0].error.startswith("malformed")
    assert results[1].ok
    assert openai_stub.hits("MANGLED") == 1


# --- rate limits --------------------------------------------------------------------------------------
def test_rpm_limit_paces_requests(openai_stub: OpenAIStub) -> None:
    engine = make(openai_stub, rpm=120, max_concurrency=8)  # 2 per second after a burst of 2
    started = time.monotonic()
    results = engine.generate([ask(f"p{i}") for i in range(6)])
    assert all(r.ok for r in results)
    assert time.monotonic() - started >= 1.95
    assert len(openai_stub.received) == 6


# --- secrets, pickling, async -----------------------------------------------------------------------
def test_api_key_is_sent_but_never_in_repr_or_pickled_state(openai_stub: OpenAIStub) -> None:
    engine = make(openai_stub)
    engine.generate([ask("hi")])
    headers = {k.lower(): v for k, v in openai_stub.received[-1].headers.items()}
    assert headers["authorization"] == f"Bearer {SECRET}"
    assert SECRET not in repr(engine) and SECRET not in str(vars(engine))
    assert SECRET.encode() not in pickle.dumps(engine)


def test_missing_api_key_variable_is_an_input_error_before_any_call(
    openai_stub: OpenAIStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DISTALIGN_TEST_KEY")
    with pytest.raises(InputError, match="DISTALIGN_TEST_KEY"):
        make(openai_stub).generate([ask("hi")])
    assert openai_stub.received == []


def test_unpickled_engine_works_and_keeps_its_counts(openai_stub: OpenAIStub) -> None:
    engine = make(openai_stub)
    engine.generate([ask("before")])
    clone = pickle.loads(pickle.dumps(engine))
    assert clone.generate([ask("after")])[0].texts == ("echo:after",)
    assert clone.stats()["requests"] == 2


def test_async_interface_runs_inside_a_running_loop(openai_stub: OpenAIStub) -> None:
    engine = make(openai_stub)

    async def main() -> list[tuple[str, ...]]:
        results = await engine.agenerate([ask("x"), ask("y")])
        return [r.texts for r in results]

    assert asyncio.run(main()) == [("echo:x",), ("echo:y",)]


@pytest.mark.parametrize(
    "bad", [{"rpm": 0}, {"tpm": -1}, {"timeout_s": 0}, {"max_concurrency": 0}, {"max_retries": -1}]
)
def test_bad_settings_are_input_errors_before_an_engine_is_built(bad: dict) -> None:
    """The settings are checked once, by the registry, for a sweep's validation and for ``make_engine``."""
    from distalign.engines.registry import check_serving, make_engine
    from distalign.records.config import ModelConfig, serving

    model = ModelConfig(name="m", weights="openai/stub-model", serving=serving("litellm", **bad))
    key = next(iter(bad))
    for check in (check_serving, make_engine):
        with pytest.raises(InputError, match=f"serving.{key}"):
            check(model)


def test_bad_prices_are_input_errors(openai_stub: OpenAIStub) -> None:
    with pytest.raises(InputError):
        make(openai_stub, prices={"input": 1.0})


# --- tokens and cost ----------------------------------------------------------------------------------
def test_tokens_and_cost_come_from_usage_and_configured_prices(openai_stub: OpenAIStub) -> None:
    prices = {"input_per_token": 1e-6, "output_per_token": 3e-6}
    engine = make(openai_stub, prices=prices)
    results = engine.generate([ask("one two three"), ask("four", n=2)])
    sent_prompt = sum(p for p, _ in openai_stub.usage_sent)
    sent_completion = sum(c for _, c in openai_stub.usage_sent)
    stats = engine.stats()
    assert (stats["prompt_tokens"], stats["completion_tokens"]) == (sent_prompt, sent_completion)
    per_result = sorted((r.usage.prompt_tokens, r.usage.completion_tokens) for r in results)
    assert per_result == sorted(openai_stub.usage_sent)
    assert stats["cost_usd"] == pytest.approx(sent_prompt * 1e-6 + sent_completion * 3e-6)
    assert stats["cost_unknown"] == 0


def test_unmapped_model_without_prices_costs_zero_and_is_flagged(openai_stub: OpenAIStub) -> None:
    engine = make(openai_stub, "hosted_vllm/stub")
    engine.generate([ask("a"), ask("b")])
    stats = engine.stats()
    assert (stats["cost_usd"], stats["cost_unknown"], stats["cost_complete"]) == (0.0, 2, False)


def test_mapped_model_is_costed_from_litellms_price_map(openai_stub: OpenAIStub) -> None:
    engine = make(openai_stub, "openai/gpt-4o-mini")
    [result] = engine.generate([ask("price this please")])
    assert result.usage.cost_usd > 0
    assert engine.stats()["cost_unknown"] == 0
