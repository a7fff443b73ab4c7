"""An Engine wrapper that answers from the response store first and sends each distinct miss once.

Successes are written as soon as the wrapped engine returns them (per chunk when ``chunk_size`` is set),
so a crash later in a sweep loses nothing already answered; errors are not stored and are retried.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import TypeVar

from distalign.engines.base import Engine
from distalign.engines.store import ResponseStore, request_key
from distalign.records.engine import (
    GenerateRequest,
    GenerateResult,
    OptionLogprobRequest,
    OptionLogprobResult,
)

Req = TypeVar("Req", OptionLogprobRequest, GenerateRequest)
Res = TypeVar("Res", OptionLogprobResult, GenerateResult)


class CachedEngine:
    """Engine protocol; ``engine_calls``, ``requests_sent`` and ``cache_hits`` count its traffic
    (``cache_hits`` counts distinct requests served from the store)."""

    def __init__(self, engine: Engine, store: ResponseStore, chunk_size: int | None = None) -> None:
        if chunk_size is not None and chunk_size < 1:
            raise ValueError("chunk_size must be at least 1")
        self.engine = engine
        self.store = store
        self.chunk_size = chunk_size
        self.identity = engine.identity
        self.capabilities = engine.capabilities
        self.engine_calls = 0
        self.requests_sent = 0
        self.cache_hits = 0

    def option_logprobs(self, requests: Sequence[OptionLogprobRequest]) -> list[OptionLogprobResult]:
        return self._serve(requests, self.engine.option_logprobs)

    def generate(self, requests: Sequence[GenerateRequest]) -> list[GenerateResult]:
        return self._serve(requests, self.engine.generate)

    def _serve(self, requests: Sequence[Req], call: Callable[[list[Req]], list[Res]]) -> list[Res]:
        keys = [request_key(self.identity, r) for r in requests]
        distinct = dict(zip(keys, requests, strict=True))  # first occurrence of each key
        answers: dict[str, Res] = {
            key: dataclasses.replace(result, cached=True)  # type: ignore[misc]
            for key, result in self.store.get_many(distinct).items()
        }
        self.cache_hits += len(answers)
        misses = [key for key in distinct if key not in answers]
        step = self.chunk_size or max(len(misses), 1)
        for start in range(0, len(misses), step):
            chunk = misses[start : start + step]
            results = call([distinct[key] for key in chunk])
            if len(results) != len(chunk):
                raise RuntimeError(f"engine returned {len(results)} results for {len(chunk)} requests")
            self.engine_calls += 1
            self.requests_sent += len(chunk)
            fresh = dict(zip(chunk, results, strict=True))
            self.store.put_many(fresh.items(), model=self.identity.name, requests=distinct)
            answers.update(fresh)
        return [answers[key] for key in keys]
