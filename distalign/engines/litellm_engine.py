"""API models through litellm: any provider it supports, or any OpenAI-compatible server (``api_base``).

One instance per provider account. The work is done by the ``a*`` coroutines (what the sweep's async caller
actor awaits); ``generate`` / ``option_logprobs`` are thin sync wrappers that run them on one event loop per
process (a daemon thread), so the rate limiter and litellm's HTTP clients always live on one loop.

There is exactly one retry point, a ``tenacity`` policy: litellm's and the OpenAI SDK's retries are switched
off (``num_retries=0, max_retries=0``; the Router's retries ignore Retry-After). Retries are bounded
(``max_retries``), back off exponentially with full jitter, and honour a server's ``Retry-After`` (header, or
the headers litellm attaches to its exception): the request waits that long and so does every other request
of the account. A ``Retry-After`` beyond ``backoff_max_s`` fails that request at once and pauses nobody.
429, 5xx, timeouts and connection errors are retried; other 4xx and malformed bodies are not. A final failure
is a result with ``error`` set, never an exception, so one bad request never loses the rest of a batch.

The API key is read from the environment at call time and never kept on the engine, so it cannot leak
through ``repr``, pickling (Ray), Hydra's saved config or MLflow.
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import logging
import os
import re
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from scipy.special import logsumexp
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt
from tenacity.wait import wait_base, wait_random_exponential

from distalign.engines.base import EngineSpec
from distalign.engines.providers import bundled_prices, capabilities_for, prefill_mode, provider_of, require
from distalign.engines.ratelimit import RateLimiter, estimate_tokens, retry_after_seconds
from distalign.engines.secrets import mask
from distalign.errors import InputError
from distalign.records.engine import (
    GenerateRequest,
    GenerateResult,
    Message,
    ModelIdentity,
    OptionLogprobRequest,
    OptionLogprobResult,
    Usage,
)

if TYPE_CHECKING:
    from distalign.records.config import ModelConfig


@dataclass
class LiteLLMSettings:
    """An API model's serving settings (litellm model string in ``weights``)."""

    api_base: str | None = None
    api_key_env: str | None = None  # name of the environment variable, never the key
    rpm: float | None = None
    tpm: float | None = None
    #: calls in flight on the account (summed over the models that share it)
    max_concurrency: int = 8
    max_retries: int = 4
    timeout_s: float = 60.0
    #: sync (one call per request) | batch (the provider's batch API: about half the price, within 24 h;
    #: OpenAI-compatible and Anthropic providers; see distalign/engines/batch/)
    mode: str = "sync"
    #: batch mode: seconds between polls of a provider batch
    batch_poll_s: float = 30.0
    #: batch mode: how often the lines of a batch that failed, expired or was cancelled are re-submitted
    batch_retries: int = 2


SERVING_MODES = ("sync", "batch")


def check_settings(s: LiteLLMSettings, where: str) -> None:
    """The settings' ranges, checked once, by the registry: when a sweep is validated and before an engine
    is built from a config."""
    for name in ("rpm", "tpm", "timeout_s"):
        value = getattr(s, name)
        if value is not None and value <= 0:
            raise InputError(f"must be positive, got {value}", where=f"{where}.{name}")
    if s.max_concurrency < 1:
        raise InputError(f"must be at least 1, got {s.max_concurrency}", where=f"{where}.max_concurrency")
    if s.max_retries < 0:
        raise InputError(f"must not be negative, got {s.max_retries}", where=f"{where}.max_retries")
    if s.mode not in SERVING_MODES:
        raise InputError(f"must be one of {', '.join(SERVING_MODES)}, got {s.mode!r}", where=f"{where}.mode")
    if s.batch_poll_s <= 0:
        raise InputError(f"must be positive, got {s.batch_poll_s}", where=f"{where}.batch_poll_s")
    if s.batch_retries < 0:
        raise InputError(f"must not be negative, got {s.batch_retries}", where=f"{where}.batch_retries")


@functools.cache
def _litellm() -> Any:
    """litellm, imported on first use: declaring the engine must not import it (seconds of start-up)."""
    import litellm

    litellm.suppress_debug_info = True
    return litellm


log = logging.getLogger(__name__)
T = TypeVar("T")

TOP_LOGPROBS = 20  # the most OpenAI (and vLLM's default max_logprobs) allows
_PRICE_KEYS = ("input_per_token", "output_per_token")
_JSON_ERROR = re.compile(r"line \d+ column \d+ \(char \d+\)|Unable to get json response")
_COUNTERS = ("requests", "retries", "failures", "rate_limited", "timeouts")
_TOKENS = ("prompt_tokens", "completion_tokens")


class _Malformed(Exception):
    """The server answered 200 with a body that is not a usable completion."""


class _WaitTooLong(Exception):
    """The server's Retry-After exceeds ``backoff_max_s``; give up now rather than block for hours."""


def retry_after_of(exc: BaseException | None) -> float | None:
    """Seconds the server asked to wait before retrying, from the headers litellm attaches to its
    exception (``litellm_response_headers``, the proxy's ``headers``) or the raw HTTP response's."""
    if exc is None:
        return None
    for headers in (
        getattr(exc, "litellm_response_headers", None),
        getattr(exc, "headers", None),
        getattr(getattr(exc, "response", None), "headers", None),
    ):
        try:
            after = retry_after_seconds(headers)
        except (AttributeError, TypeError):  # not a mapping: not headers after all
            continue
        if after is not None:
            return after
    return None


class wait_retry_after(wait_base):  # noqa: N801 - tenacity's naming of wait strategies
    """Wait what the server asked (``Retry-After``), else fall back to ``fallback`` (exponential)."""

    def __init__(self, fallback: wait_base) -> None:
        self.fallback = fallback

    def __call__(self, retry_state: RetryCallState) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome is not None else None
        after = retry_after_of(exc)
        return after if after is not None else self.fallback(retry_state)


# --- pure helpers ------------------------------------------------------------------------------------
def match_candidates(
    top_logprobs: Sequence[tuple[str, float]], candidates: Sequence[str]
) -> tuple[float | None, ...]:
    """Log-prob of each candidate among the returned top tokens, ``None`` when it is not among them.

    Tokens are compared with surrounding whitespace stripped (``" A"`` and ``"A"`` are distinct tokens
    that give the same answer), so the probabilities of all spellings of a candidate are added.
    """
    best: dict[str, float] = {}
    for token, logprob in top_logprobs:  # a token listed twice (sampled + top) counts once
        best[token] = max(logprob, best.get(token, float("-inf")))
    out: list[float | None] = []
    for cand in candidates:
        hits = [lp for tok, lp in best.items() if tok.strip() == cand.strip()]
        out.append(None if not hits else float(logsumexp(hits)))
    return tuple(out)


def _field(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, Mapping) else getattr(obj, name, None)


def _retryable(exc: BaseException) -> bool:
    return _classify(exc)[1]


def _classify(exc: BaseException) -> tuple[str, bool]:
    """(kind, retryable) of a failed call."""
    if isinstance(exc, _Malformed):
        return "malformed", False
    if isinstance(exc, _WaitTooLong):
        return "rate_limited", False
    status = getattr(exc, "status_code", None)
    if status == 200 or _JSON_ERROR.search(str(exc)):
        return "malformed", False
    if isinstance(exc, _litellm().Timeout | asyncio.TimeoutError | TimeoutError) or status == 408:
        return "timeout", True
    if status == 429 or isinstance(exc, _litellm().RateLimitError):
        return "rate_limited", True
    if isinstance(exc, _litellm().APIConnectionError):
        return "connection", True
    if isinstance(status, int) and status >= 500:
        return "server_error", True
    return "client_error", False


class _SharedLoop:
    """One event loop per process, on a daemon thread, for every engine.

    litellm caches its HTTP clients and runs a logging worker bound to the loop that first used them;
    a loop per engine would hand a client bound to one loop to another. The loop is recreated in a
    forked child, and stopped at exit after cancelling what still runs on it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pid = -1
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread: threading.Thread | None = None

    def get(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self.loop is None or self._pid != os.getpid():
                self.loop = asyncio.new_event_loop()
                self.thread = threading.Thread(
                    target=self.loop.run_forever, name="distalign-litellm", daemon=True
                )
                self.thread.start()
                self._pid = os.getpid()
            return self.loop

    def stop(self) -> None:
        loop, thread = self.loop, self.thread
        if loop is None or thread is None or self._pid != os.getpid() or not loop.is_running():
            return

        async def cancel_all() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.wait(tasks, timeout=2)

        try:
            asyncio.run_coroutine_threadsafe(cancel_all(), loop).result(timeout=5)
        except Exception:  # best effort at interpreter exit
            pass
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)


_SHARED = _SharedLoop()
atexit.register(_SHARED.stop)


# --- the engine --------------------------------------------------------------------------------------
class LiteLLMEngine:
    """The batched ``Engine`` for API models. ``identity.weights`` is the litellm model string."""

    def __init__(
        self,
        identity: ModelIdentity,
        api_base: str | None = None,
        api_key_env: str | None = None,
        rpm: float | None = None,
        tpm: float | None = None,
        max_concurrency: int = 8,
        max_retries: int = 4,
        timeout_s: float = 60.0,
        backoff_base_s: float = 1.0,
        backoff_max_s: float = 60.0,
        prices: Mapping[str, float] | None = None,
        capabilities: Mapping[str, Any] | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """``clock`` and ``sleep`` (a pair) time every wait: pacing, pauses and retries; a test passes a
        virtual pair to check waits exactly."""
        for name, value in (("backoff_base_s", backoff_base_s), ("backoff_max_s", backoff_max_s)):
            if value < 0:
                raise InputError(f"must not be negative, got {value}", where=f"engine.{name}")
        if prices is not None:
            for key in prices:
                if key not in _PRICE_KEYS:
                    raise InputError(
                        f"unknown price {key!r} (known: {', '.join(_PRICE_KEYS)})", where="prices"
                    )
            for key in _PRICE_KEYS:
                value = prices.get(key)
                if not isinstance(value, int | float) or value < 0:
                    raise InputError(f"needs a non-negative number, got {value!r}", where=f"prices.{key}")
        self.identity = identity
        self.provider = provider_of(identity.weights)
        if identity.chat_template is not None and self.provider != "hosted_vllm":
            raise InputError(
                f"a chat template can only be sent to a vLLM server (hosted_vllm/...), not {self.provider!r}",
                where="model.chat_template",
            )
        self.capabilities = capabilities_for(identity.weights, capabilities)
        self.prefill = prefill_mode(identity.weights, capabilities)
        self.api_base = api_base
        self.api_key_env = api_key_env
        self.rpm, self.tpm, self.max_concurrency = rpm, tpm, max_concurrency
        self.max_retries, self.timeout_s = max_retries, timeout_s
        self.backoff_base_s, self.backoff_max_s = backoff_base_s, backoff_max_s
        self.prices = None if prices is None else {k: float(prices[k]) for k in _PRICE_KEYS}
        self._clock, self._sleep = clock, sleep
        self._counts = dict.fromkeys(_COUNTERS + _TOKENS, 0)
        self._cost_usd = 0.0
        self._cost_unknown = 0
        self._runtime_init()

    def _runtime_init(self) -> None:
        self._limiter = RateLimiter(
            self.rpm, self.tpm, max_concurrency=self.max_concurrency, clock=self._clock, sleep=self._sleep
        )

    # --- pickling / repr: nothing secret and nothing tied to this process ----------------------------
    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_limiter"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._runtime_init()

    def __repr__(self) -> str:
        return (
            f"LiteLLMEngine(model={self.identity.weights!r}, provider={self.provider!r}, "
            f"api_base={self.api_base!r}, api_key_env={self.api_key_env!r}, rpm={self.rpm}, tpm={self.tpm}, "
            f"max_concurrency={self.max_concurrency}, max_retries={self.max_retries})"
        )

    # --- public interface: the coroutines, and sync wrappers over them ------------------------------
    async def aoption_logprobs(self, requests: Sequence[OptionLogprobRequest]) -> list[OptionLogprobResult]:
        return await self._on_loop(self._option_logprobs(list(requests)))

    async def agenerate(self, requests: Sequence[GenerateRequest]) -> list[GenerateResult]:
        return await self._on_loop(self._generate(list(requests)))

    def option_logprobs(self, requests: Sequence[OptionLogprobRequest]) -> list[OptionLogprobResult]:
        return self._wait_for(self.aoption_logprobs(requests))

    def generate(self, requests: Sequence[GenerateRequest]) -> list[GenerateResult]:
        return self._wait_for(self.agenerate(requests))

    def stats(self) -> dict[str, float | int | bool]:
        """Attempts, retries, final failures, tokens and cost so far. ``cost_unknown`` counts answers
        whose price neither litellm's cost map nor the configured ``prices`` knew (costed at 0)."""
        return {
            **self._counts,
            "cost_usd": self._cost_usd,
            "cost_unknown": self._cost_unknown,
            "cost_complete": self._cost_unknown == 0,
            "concurrency": self._limiter.concurrency,
        }

    # --- event loop plumbing ----------------------------------------------------------------------
    @staticmethod
    def _wait_for(coro: Coroutine[Any, Any, T]) -> T:
        """Block this (non-loop) thread until ``coro`` has run on the shared loop."""
        if threading.current_thread() is _SHARED.thread:
            coro.close()
            raise RuntimeError("called the sync interface from the engine's own loop; await a* methods")
        return asyncio.run_coroutine_threadsafe(coro, _SHARED.get()).result()

    @staticmethod
    async def _on_loop(coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the shared loop, awaited from whichever loop the caller runs (a Ray actor's)."""
        loop = _SHARED.get()
        if asyncio.get_running_loop() is loop:
            return await coro
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, loop))

    # --- request building -------------------------------------------------------------------------
    def _api_key(self) -> str | None:
        if self.api_key_env is None:
            return None
        key = os.environ.get(self.api_key_env)
        if not key:
            raise InputError(
                f"environment variable {self.api_key_env} is not set", where="engine.api_key_env"
            )
        return key

    def _messages(
        self, messages: Sequence[Message], prefix: str
    ) -> tuple[list[dict[str, str]], dict[str, Any]]:
        """Chat messages and vLLM extras; see ``providers.PrefillMode`` for how a prefix is sent."""
        out = [{"role": m.role, "content": m.content} for m in messages]
        extra: dict[str, Any] = {}
        if self.identity.chat_template is not None:
            extra["chat_template"] = self.identity.chat_template
        if not prefix:
            return out, extra
        if self.prefill == "continue":
            out.append({"role": "assistant", "content": prefix})
            extra.update(continue_final_message=True, add_generation_prompt=False)
        elif self.prefill == "native":
            out.append({"role": "assistant", "content": prefix.rstrip()})
        elif out and out[-1]["role"] == "user":
            out[-1] = {"role": "user", "content": f"{out[-1]['content']}\n{prefix.strip()}"}
        else:
            out.append({"role": "user", "content": prefix.strip()})
        return out, extra

    def _base_kwargs(self, api_key: str | None) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "model": self.identity.weights,
            "timeout": self.timeout_s,
            "num_retries": 0,
            "max_retries": 0,
        }
        if self.api_base is not None:
            kwargs["api_base"] = self.api_base
        if api_key is not None:
            kwargs["api_key"] = api_key
        return kwargs

    # --- batches ----------------------------------------------------------------------------------
    async def _option_logprobs(self, requests: list[OptionLogprobRequest]) -> list[OptionLogprobResult]:
        if not requests:
            return []
        require(self.identity.weights, self.capabilities, option_logprobs=True)
        base = self._base_kwargs(self._api_key())

        async def one(req: OptionLogprobRequest) -> OptionLogprobResult:
            messages, extra = self._messages(req.messages, req.assistant_prefix)
            kwargs = {**base, "messages": messages, "max_tokens": 1, "temperature": 0.0, "logprobs": True}
            kwargs["top_logprobs"] = TOP_LOGPROBS
            if extra:
                kwargs["extra_body"] = extra
            try:
                resp, usage = await self._call(kwargs, estimate_tokens([m["content"] for m in messages], 1))
                top = self._top_logprobs(resp)
            except Exception as exc:  # errors are data
                return OptionLogprobResult(error=self._fail(exc))
            return OptionLogprobResult(logprobs=match_candidates(top, req.candidates), usage=usage)

        return list(await asyncio.gather(*(one(r) for r in requests)))

    async def _generate(self, requests: list[GenerateRequest]) -> list[GenerateResult]:
        if not requests:
            return []
        for req in requests:
            p = req.params
            require(
                self.identity.weights,
                self.capabilities,
                n=p.n,
                seed=p.seed is not None,
                allowed_tokens=p.allowed is not None or p.min_tokens > 0,
            )
        base = self._base_kwargs(self._api_key())

        async def one(req: GenerateRequest) -> GenerateResult:
            p = req.params
            messages, extra = self._messages(req.messages, req.assistant_prefix)
            kwargs = {**base, "messages": messages, "temperature": p.temperature, "top_p": p.top_p}
            kwargs["max_tokens"] = p.max_tokens
            if self.capabilities.n_samples:
                kwargs["n"] = p.n
            if p.stop:
                kwargs["stop"] = list(p.stop)
            if p.seed is not None:
                kwargs["seed"] = p.seed
            if p.allowed is not None:
                alternatives = "|".join(re.escape(s) for s in p.allowed)
                reps = f"{{{max(1, p.min_tokens)},{p.max_tokens}}}"
                extra["structured_outputs"] = {"regex": f"(?:{alternatives}){reps}"}
            if p.min_tokens > 0:
                extra["min_tokens"] = p.min_tokens
            if extra:
                kwargs["extra_body"] = extra
            estimate = estimate_tokens([m["content"] for m in messages], p.max_tokens * p.n)
            try:
                resp, usage = await self._call(kwargs, estimate)
                texts = self._texts(resp, p.n)
            except Exception as exc:  # errors are data
                return GenerateResult(error=self._fail(exc))
            return GenerateResult(texts=texts, usage=usage)

        return list(await asyncio.gather(*(one(r) for r in requests)))

    # --- one call with bounded retries ------------------------------------------------------------
    async def _call(self, kwargs: dict[str, Any], estimate: int) -> tuple[Any, Usage]:
        """The response and its usage; raises the last error once retries are spent or not allowed."""
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.max_retries + 1),
            retry=retry_if_exception(_retryable),
            wait=wait_retry_after(wait_random_exponential(self.backoff_base_s, max=self.backoff_max_s)),
            sleep=self._sleep,
            before_sleep=self._before_retry,
            reraise=True,
        )
        return await retrying(self._attempt, kwargs, estimate)

    async def _attempt(self, kwargs: dict[str, Any], estimate: int) -> tuple[Any, Usage]:
        async with self._limiter.slot() as started:
            await self._limiter.acquire(estimate)
            self._counts["requests"] += 1
            try:
                resp = await asyncio.wait_for(_litellm().acompletion(**kwargs), self.timeout_s * 1.5 + 1.0)
                if not _field(resp, "choices"):
                    raise _Malformed("response has no choices")
            except Exception as exc:
                self._on_error(exc, started)
                raise
            self._limiter.on_success()
            return resp, self._account(resp, estimate)

    def _on_error(self, exc: BaseException, started: float) -> None:
        """Count the failure and slow the account down; raises ``_WaitTooLong`` (and pauses nobody) when
        the server asks for a wait beyond ``backoff_max_s``."""
        kind, retryable = _classify(exc)
        if kind == "timeout":
            self._counts["timeouts"] += 1
        if kind == "rate_limited":
            self._counts["rate_limited"] += 1
            self._limiter.on_rate_limited(started)
        after = retry_after_of(exc) if retryable else None
        if after is None:
            return
        if after > self.backoff_max_s:
            raise _WaitTooLong(
                f"{self.identity.weights}: server asked to retry after {after:.0f}s, "
                f"more than backoff_max_s={self.backoff_max_s:g}"
            ) from exc
        self._limiter.pause_until(self._clock() + after)  # every request of the account waits

    def _before_retry(self, state: RetryCallState) -> None:
        self._counts["retries"] += 1
        exc = state.outcome.exception() if state.outcome is not None else None
        log.info(
            "retry %d/%d of %s after %s (%.2fs)",
            state.attempt_number,
            self.max_retries,
            self.identity.weights,
            _classify(exc)[0] if exc is not None else "?",
            state.upcoming_sleep,
        )

    def _fail(self, exc: BaseException) -> str:
        kind, _ = _classify(exc)
        self._counts["failures"] += 1
        key = os.environ.get(self.api_key_env) if self.api_key_env else None
        # masked whole before it is cut: a key echoed across the cut would otherwise survive in part
        message = " ".join(mask(str(exc), extra=[key]).split())[:400] or type(exc).__name__
        status = getattr(exc, "status_code", None)
        return f"{kind}: HTTP {status}: {message}" if isinstance(status, int) else f"{kind}: {message}"

    # --- response parsing -------------------------------------------------------------------------
    def _account(self, resp: Any, estimate: int) -> Usage:
        usage = _field(resp, "usage")
        prompt = int(_field(usage, "prompt_tokens") or 0) if usage is not None else 0
        completion = int(_field(usage, "completion_tokens") or 0) if usage is not None else 0
        self._limiter.record_usage(estimate, prompt + completion)
        cost = self._cost(resp, prompt, completion)
        self._counts["prompt_tokens"] += prompt
        self._counts["completion_tokens"] += completion
        if cost is None:
            self._cost_unknown += 1
        else:
            self._cost_usd += cost
        return Usage(prompt_tokens=prompt, completion_tokens=completion, cost_usd=cost or 0.0)

    def _cost(self, resp: Any, prompt: int, completion: int) -> float | None:
        """Configured prices win (a private price list, a self-hosted server); then litellm's map."""
        if self.prices is not None:
            return prompt * self.prices["input_per_token"] + completion * self.prices["output_per_token"]
        try:
            return float(_litellm().completion_cost(completion_response=resp, model=self.identity.weights))
        except Exception:  # ModelNotMappedError and friends: unknown, flagged in stats()
            return None

    @staticmethod
    def _top_logprobs(resp: Any) -> list[tuple[str, float]]:
        content = _field(_field(_field(resp, "choices")[0], "logprobs"), "content")
        if not content:
            raise _Malformed("response carries no logprobs for the first token")
        first = content[0]
        pairs = [
            (str(_field(t, "token")), float(_field(t, "logprob")))
            for t in _field(first, "top_logprobs") or []
        ]
        if _field(first, "token") is not None and _field(first, "logprob") is not None:
            pairs.append((str(_field(first, "token")), float(_field(first, "logprob"))))
        return pairs

    @staticmethod
    def _texts(resp: Any, n: int) -> tuple[str, ...]:
        choices = sorted(_field(resp, "choices"), key=lambda c: _field(c, "index") or 0)
        if len(choices) != n:
            raise _Malformed(f"asked for {n} choices, got {len(choices)}")
        return tuple(str(_field(_field(c, "message"), "content") or "") for c in choices)


def _build(model: ModelConfig, s: LiteLLMSettings, identity: ModelIdentity) -> LiteLLMEngine:
    c = model.serving
    prices = None
    if c.input_cost_per_token is not None or c.output_cost_per_token is not None:
        prices = {
            "input_per_token": c.input_cost_per_token or 0.0,
            "output_per_token": c.output_cost_per_token or 0.0,
        }
    return LiteLLMEngine(
        identity,
        api_base=s.api_base,
        api_key_env=s.api_key_env,
        rpm=s.rpm,
        tpm=s.tpm,
        max_concurrency=s.max_concurrency,
        max_retries=s.max_retries,
        timeout_s=s.timeout_s,
        prices=prices,
        capabilities=dict(c.capabilities) or None,
    )


def _check(model: ModelConfig, s: LiteLLMSettings, require_keys: bool) -> None:
    check_settings(s, f"model {model.name!r}: serving")
    if s.mode == "batch":
        from distalign.engines.batch.base import check_batch_serving

        check_batch_serving(model)
    if require_keys and s.api_key_env and not os.environ.get(s.api_key_env):
        raise InputError(
            f"the API key variable {s.api_key_env} is not set in this environment; export it before "
            f"launching (keys are read from the environment only, never from configs)",
            where=f"model {model.name!r}: serving.api_key_env",
        )


ENGINE = EngineSpec(
    name="litellm",
    settings=LiteLLMSettings,
    build=_build,
    capabilities=lambda model, s: capabilities_for(model.weights, model.serving.capabilities),
    api=True,
    # one pool (one rate limiter) per provider account
    account=lambda model, s: f"{provider_of(model.weights)}:{s.api_base or ''}:{s.api_key_env or ''}",
    concurrency=lambda s: s.max_concurrency,
    secrets=lambda s: (s.api_key_env,) if s.api_key_env else (),
    check=_check,
    batch=lambda model, s: s.mode == "batch",
    prices=lambda model: bundled_prices(model.weights),
)
