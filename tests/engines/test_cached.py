"""CachedEngine: de-duplication, store hits, immediate persistence."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from distalign.engines.base import Engine
from distalign.engines.cached import CachedEngine
from distalign.engines.store import ResponseStore
from distalign.records.engine import (
    Capabilities,
    GenerateRequest,
    GenerateResult,
    Message,
    ModelIdentity,
    OptionLogprobRequest,
    OptionLogprobResult,
    SamplingParams,
)


@dataclass
class CountingEngine:
    """Answers from the prompt text; counts calls. ``timeout``/``concurrency`` stand for transport."""

    identity: ModelIdentity = field(default_factory=lambda: ModelIdentity("fake", "fake-weights", "r1"))
    capabilities: Capabilities = field(default_factory=Capabilities)
    timeout: float = 1.0
    concurrency: int = 1
    fail_on: str | None = None
    crash_on_call: int | None = None
    calls: list[int] = field(default_factory=list)

    def option_logprobs(self, requests: Sequence[OptionLogprobRequest]) -> list[OptionLogprobResult]:
        self.calls.append(len(requests))
        return [OptionLogprobResult(logprobs=tuple(-float(len(c)) for c in r.candidates)) for r in requests]

    def generate(self, requests: Sequence[GenerateRequest]) -> list[GenerateResult]:
        self.calls.append(len(requests))
        if self.crash_on_call is not None and len(self.calls) == self.crash_on_call:
            raise RuntimeError("engine died")
        out = []
        for r in requests:
            text = r.messages[-1].content
            if text == self.fail_on:
                out.append(GenerateResult(error="rate limited"))
            else:
                out.append(
                    GenerateResult(texts=tuple(f"{text}#{r.sample_index}#{i}" for i in range(r.params.n)))
                )
        return out


def _gen(text: str, sample_index: int = 0, n: int = 1) -> GenerateRequest:
    return GenerateRequest((Message("user", text),), SamplingParams(n=n), sample_index=sample_index)


def test_protocol_and_second_identical_run_makes_no_engine_call(tmp_path: Path) -> None:
    requests = [_gen("a"), _gen("b", n=2), _gen("a", sample_index=1)]
    first_engine = CountingEngine()
    first = CachedEngine(first_engine, ResponseStore(tmp_path))
    assert isinstance(first, Engine)
    answers = first.generate(requests)
    assert [r.texts for r in answers] == [("a#0#0",), ("b#0#0", "b#0#1"), ("a#1#0",)]
    assert not any(r.cached for r in answers)

    second_engine = CountingEngine(timeout=99.0, concurrency=64)  # transport differs, identity does not
    second = CachedEngine(second_engine, ResponseStore(tmp_path))
    again = second.generate(requests)
    assert second_engine.calls == [] and second.engine_calls == 0 and second.cache_hits == 3
    assert [r.texts for r in again] == [r.texts for r in answers] and all(r.cached for r in again)


def test_identical_requests_are_sent_once_and_answered_in_order(tmp_path: Path) -> None:
    engine = CountingEngine()
    cached = CachedEngine(engine, ResponseStore(tmp_path))
    requests = [_gen("x"), _gen("y"), _gen("x"), _gen("x")]
    out = cached.generate(requests)
    assert engine.calls == [2] and cached.requests_sent == 2 and cached.engine_calls == 1
    assert [r.texts[0] for r in out] == ["x#0#0", "y#0#0", "x#0#0", "x#0#0"]


def test_partial_hits_send_only_misses(tmp_path: Path) -> None:
    store = ResponseStore(tmp_path)
    CachedEngine(CountingEngine(), store).option_logprobs(
        [OptionLogprobRequest((Message("user", "q"),), ("A",))]
    )
    engine = CountingEngine()
    cached = CachedEngine(engine, store)
    reqs = [OptionLogprobRequest((Message("user", q),), ("A", "BB")) for q in ("q", "r")]
    reqs.insert(0, OptionLogprobRequest((Message("user", "q"),), ("A",)))
    out = cached.option_logprobs(reqs)
    assert engine.calls == [2] and cached.cache_hits == 1
    assert [r.cached for r in out] == [True, False, False] and out[1].logprobs == (-1.0, -2.0)


def test_other_model_identity_misses(tmp_path: Path) -> None:
    store = ResponseStore(tmp_path)
    CachedEngine(CountingEngine(), store).generate([_gen("a")])
    other = CountingEngine(identity=ModelIdentity("fake", "fake-weights", "r2"))
    CachedEngine(other, store).generate([_gen("a")])
    assert other.calls == [1]


def test_errors_are_returned_not_stored_and_retried(tmp_path: Path) -> None:
    store = ResponseStore(tmp_path)
    out = CachedEngine(CountingEngine(fail_on="bad"), store).generate([_gen("ok"), _gen("bad")])
    assert out[0].ok and out[1].error == "rate limited"
    retry = CountingEngine()
    again = CachedEngine(retry, store).generate([_gen("ok"), _gen("bad")])
    assert retry.calls == [1] and again[1].texts == ("bad#0#0",)


def test_answers_before_a_crash_are_kept(tmp_path: Path) -> None:
    store = ResponseStore(tmp_path)
    crashing = CachedEngine(CountingEngine(crash_on_call=2), store, chunk_size=2)
    with pytest.raises(RuntimeError, match="engine died"):
        crashing.generate([_gen(t) for t in "abcd"])
    resumed_engine = CountingEngine()
    resumed = CachedEngine(resumed_engine, store, chunk_size=2)
    resumed.generate([_gen(t) for t in "abcd"])
    assert resumed_engine.calls == [2] and resumed.cache_hits == 2
