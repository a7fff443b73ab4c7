"""The ``hf`` engine: a transformers causal LM, batched, on CPU or GPU.

Log-probs take one left-padded forward pass per batch and apply the LM head only at the last position
(the head over a 49k vocabulary dominates otherwise). Generation runs its own decode loop over the KV
cache because ``model.generate`` samples from one global RNG: here every sample row owns a random
stream seeded from (seed, sample index, row), so a seeded request gives the same text whatever else shares
its batch. The samples of one request share one prefill of its prompt. Rows leave the batch (and the
cache) as soon as they finish.

Each decoding step treats the batch as a whole: masks, temperature, top-p and the draw are tensor
operations over all rows, and the picks reach the host once per step. A row draws by inverting the CDF of
its distribution at one uniform number from its own stream (a ``random.Random``), which keeps rows
independent without a device generator per row. Per-row kernels and a host sync per row and step made
the engine run at a fraction of a plain ``model.generate`` on a GPU, where the forward pass is cheap.
"""

from __future__ import annotations

import functools
import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from distalign.engines.base import EngineSpec
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

if TYPE_CHECKING:
    import torch

    from distalign.records.config import ModelConfig

_DTYPES = ("float32", "bfloat16", "float16")


def _inference_mode(fn: Any) -> Any:
    """``torch.inference_mode`` around ``fn``, torch imported at call time (declaring the engine must not
    import torch)."""

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        import torch

        with torch.inference_mode():
            return fn(*args, **kwargs)

    return run


@dataclass
class _Row:
    """One sample being decoded (mutable working state, never leaves this module)."""

    request: int
    ids: list[int]
    params: SamplingParams
    max_new: int
    allowed: list[int] | None
    rng: random.Random | None  # None: greedy
    generated: list[int] = field(default_factory=list)
    text: str | None = None


def row_seed(seed: int, sample_index: int, row: int) -> int:
    """A generator seed per sample row, independent of batch position."""
    digest = hashlib.sha256(f"{seed}:{sample_index}:{row}".encode()).digest()
    return int.from_bytes(digest[:8], "big") & (2**63 - 1)


class HFEngine:
    """Engine protocol over a transformers model loaded once per instance."""

    def __init__(
        self,
        identity: ModelIdentity,
        device: str = "cpu",
        dtype: str = "float32",
        batch_size: int = 16,
        max_new_tokens_cap: int = 512,
        num_threads: int | None = None,
    ) -> None:
        """``num_threads`` sets torch's (process-wide) intra-op threads: on an oversubscribed CPU, more
        threads than the cores this process really gets make every forward pass many times slower."""
        import torch

        if dtype not in _DTYPES:
            raise InputError(f"unknown dtype {dtype!r}; choose one of {sorted(_DTYPES)}", where="dtype")
        if batch_size < 1 or max_new_tokens_cap < 1:
            raise InputError("batch_size and max_new_tokens_cap must be at least 1", where="engine")
        if num_threads is not None:
            torch.set_num_threads(max(1, num_threads))
        self.identity = identity
        self.capabilities = Capabilities()
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.max_new_tokens_cap = max_new_tokens_cap
        self.timeline = Timeline()
        with self.timeline.loading():
            self.tokenizer, self.model = _load(identity, self.device, getattr(torch, dtype))
        if identity.chat_template is None and not getattr(self.tokenizer, "chat_template", None):
            raise InputError("the tokenizer has no chat template; set chat_template", where=identity.name)
        config = self.model.config
        self.max_positions = int(getattr(config, "max_position_embeddings", None) or 1 << 30)
        self.eos_ids = _eos_ids(self.model, self.tokenizer)
        pad = self.tokenizer.pad_token_id
        self.pad_id = int(pad if pad is not None else min(self.eos_ids, default=0))
        self._eos = torch.tensor(sorted(self.eos_ids), dtype=torch.long, device=self.device)

    # ----------------------------------------------------------------------------------- log-probs
    def option_logprobs(self, requests: Sequence[OptionLogprobRequest]) -> list[OptionLogprobResult]:
        with self.timeline.call("option_logprobs", len(requests)):
            return self._option_logprobs(requests)

    def _option_logprobs(self, requests: Sequence[OptionLogprobRequest]) -> list[OptionLogprobResult]:
        results: list[OptionLogprobResult | None] = [None] * len(requests)
        ready: list[tuple[int, list[int], list[tuple[int, ...]]]] = []
        for i, request in enumerate(requests):
            try:
                text = self._render(request.messages, request.assistant_prefix)
                ids = self._checked_ids(text, room=1)
                ready.append((i, ids, candidate_token_spellings(self.tokenizer, request.candidates, text)))
            except Exception as exc:  # errors are data: one bad request never sinks the batch
                results[i] = OptionLogprobResult(error=_describe(exc))
        ready.sort(key=lambda item: len(item[1]))
        for span in _batches([len(ids) for _, ids, _ in ready], self.batch_size):
            chunk = ready[span]
            try:
                logprobs, _ = self._forward([ids for _, ids, _ in chunk])
            except Exception as exc:
                for i, _, _ in chunk:
                    results[i] = OptionLogprobResult(error=_describe(exc))
                continue
            rows = [row for row, (_, _, cand) in enumerate(chunk) for t in cand for _ in t]
            tokens = [tok for _, _, cand in chunk for t in cand for tok in t]
            flat = iter(logprobs[rows, tokens].tolist())  # one gather, one transfer per batch
            for i, ids, cand in chunk:
                values = tuple(_logsumexp([next(flat) for _ in t]) if t else None for t in cand)
                results[i] = OptionLogprobResult(logprobs=values, usage=Usage(prompt_tokens=len(ids)))
        return [r if r is not None else OptionLogprobResult(error="not processed") for r in results]

    # ---------------------------------------------------------------------------------- generation
    def generate(self, requests: Sequence[GenerateRequest]) -> list[GenerateResult]:
        with self.timeline.call("generate", len(requests)):
            return self._generate(requests)

    def _generate(self, requests: Sequence[GenerateRequest]) -> list[GenerateResult]:
        errors: dict[int, str] = {}
        rows: list[_Row] = []
        prompt_tokens: dict[int, int] = {}
        for i, request in enumerate(requests):
            try:
                new_rows = self._rows(i, request)
            except Exception as exc:
                errors[i] = _describe(exc)
                continue
            rows.extend(new_rows)
            prompt_tokens[i] = len(new_rows[0].ids)
        rows.sort(key=lambda r: len(r.ids))
        for span in _batches([len(r.ids) for r in rows], self.batch_size):
            chunk = [r for r in rows[span] if r.request not in errors]
            try:
                if chunk:
                    self._decode(chunk)
            except Exception as exc:
                for r in chunk:
                    errors[r.request] = _describe(exc)
        by_request: dict[int, list[_Row]] = {}
        for r in rows:
            by_request.setdefault(r.request, []).append(r)
        results = []
        for i in range(len(requests)):
            if i in errors:
                results.append(GenerateResult(error=errors[i]))
                continue
            mine = by_request[i]
            usage = Usage(
                prompt_tokens=prompt_tokens[i], completion_tokens=sum(len(r.generated) for r in mine)
            )
            results.append(GenerateResult(texts=tuple(r.text or "" for r in mine), usage=usage))
        return results

    def _rows(self, index: int, request: GenerateRequest) -> list[_Row]:
        p = request.params
        _validate(p)
        text = self._render(request.messages, request.assistant_prefix)
        ids = self._checked_ids(text, room=max(p.min_tokens, 1))
        max_new = min(p.max_tokens, self.max_new_tokens_cap, self.max_positions - len(ids))
        allowed = None if p.allowed is None else allowed_token_ids(self.tokenizer, p.allowed, text)
        rows = []
        for j in range(p.n):
            rng = None
            if p.temperature > 0:
                rng = random.Random(None if p.seed is None else row_seed(p.seed, request.sample_index, j))
            rows.append(_Row(index, ids, p, max_new, allowed, rng))
        return rows

    @_inference_mode
    def _decode(self, rows: list[_Row]) -> None:
        # the n samples of a request share their prompt: run it once and copy its cache to every sample
        import torch

        unique: dict[tuple[int, ...], int] = {}
        expand = [unique.setdefault(tuple(r.ids), len(unique)) for r in rows]
        logprobs, state = self._forward([list(ids) for ids in unique], keep_cache=True)
        cache, mask = state
        if len(unique) < len(rows):
            index = torch.tensor(expand, device=self.device)
            cache.batch_select_indices(index)
            mask, logprobs = mask[index], logprobs[index]
        active = list(rows)
        sampler = _Sampler(active, logprobs.shape[-1], self.device)
        while True:
            picks = sampler.pick(logprobs, active, self._eos)
            for row, token in zip(active, picks, strict=True):
                row.generated.append(token)
            still = [pos for pos, row in enumerate(active) if not self._finished(row)]
            if not still:
                return
            if len(still) < len(active):
                index = torch.tensor(still, device=self.device)
                cache.batch_select_indices(index)
                mask = mask[index]
                sampler = sampler.select(index)
                active = [active[pos] for pos in still]
            step = torch.tensor([[r.generated[-1]] for r in active], device=self.device)
            mask = torch.cat([mask, mask.new_ones((len(active), 1))], dim=1)
            out = self.model(
                input_ids=step,
                attention_mask=mask,
                position_ids=mask.sum(dim=1, keepdim=True) - 1,
                past_key_values=cache,
                use_cache=True,
                logits_to_keep=1,
            )
            logprobs = torch.log_softmax(out.logits[:, -1, :].float(), dim=-1)

    def _finished(self, row: _Row) -> bool:
        """Apply EOS, stop strings (after min_tokens, as vLLM does) and the length limit; set the text."""
        n = len(row.generated)
        if row.generated[-1] in self.eos_ids and n > row.params.min_tokens:
            row.text = self.tokenizer.decode(row.generated[:-1], skip_special_tokens=True)
            return True
        text = None
        if row.params.stop and n >= row.params.min_tokens:
            text = self.tokenizer.decode(row.generated, skip_special_tokens=True)
            hits = [k for k in (text.find(s) for s in row.params.stop if s) if k >= 0]
            if hits:
                row.text = text[: min(hits)]
                return True
        if n >= row.max_new:
            row.text = (
                text if text is not None else self.tokenizer.decode(row.generated, skip_special_tokens=True)
            )
            return True
        return False

    def stats(self) -> dict[str, Any]:
        """Load time, when the model was ready and the span of each call (see ``engines.timeline``)."""
        return self.timeline.stats()

    # ------------------------------------------------------------------------------------- helpers
    def _render(self, messages: Sequence[Any], assistant_prefix: str) -> str:
        return render_chat(self.tokenizer, messages, assistant_prefix, self.identity.chat_template)

    def _checked_ids(self, text: str, room: int) -> list[int]:
        ids = encode(self.tokenizer, text)
        if not ids:
            raise ValueError("the rendered prompt is empty")
        if len(ids) + room > self.max_positions:
            raise ValueError(
                f"prompt of {len(ids)} tokens leaves no room in the {self.max_positions}-token context"
            )
        return ids

    @_inference_mode
    def _forward(self, batch: list[list[int]], keep_cache: bool = False) -> tuple[torch.Tensor, Any]:
        """Left-padded forward pass; next-token log-probs of each row (and the cache for decoding)."""
        import torch

        length = max(len(ids) for ids in batch)
        input_ids = torch.full((len(batch), length), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), length), dtype=torch.long)
        for row, ids in enumerate(batch):
            input_ids[row, length - len(ids) :] = torch.tensor(ids)
            mask[row, length - len(ids) :] = 1
        input_ids, mask = input_ids.to(self.device), mask.to(self.device)
        out = self.model(
            input_ids=input_ids,
            attention_mask=mask,
            position_ids=(mask.cumsum(dim=1) - 1).clamp(min=0),
            use_cache=keep_cache,
            logits_to_keep=1,
        )
        logprobs = torch.log_softmax(out.logits[:, -1, :].float(), dim=-1)
        return logprobs, (out.past_key_values, mask) if keep_cache else None


class _Sampler:
    """Per-row sampling settings of a decoding batch as tensors, so one step picks for every row at once."""

    def __init__(self, rows: list[_Row], vocab: int, device: torch.device, **tensors: Any) -> None:
        import torch

        if tensors:
            self.__dict__.update(tensors)
            return
        self.temperature = torch.tensor(
            [r.params.temperature if r.rng is not None else 1.0 for r in rows], device=device
        )[:, None]
        self.top_p = torch.tensor([r.params.top_p for r in rows], device=device)[:, None]
        self.greedy = torch.tensor([r.rng is None for r in rows], device=device)
        self.all_greedy = all(r.rng is None for r in rows)  # host-side flags: no device sync per step
        self.any_top_p = any(r.params.top_p < 1 for r in rows)
        self.blocked: torch.Tensor | None = None  # (rows, vocab): tokens a row may not emit
        if any(r.allowed is not None for r in rows):
            blocked = torch.zeros((len(rows), vocab), dtype=torch.bool)
            for i, r in enumerate(rows):
                if r.allowed is not None:
                    blocked[i] = True
                    blocked[i, r.allowed] = False
            self.blocked = blocked.to(device)

    def select(self, index: torch.Tensor) -> _Sampler:
        import torch

        fields = {k: v[index] if isinstance(v, torch.Tensor) else v for k, v in self.__dict__.items()}
        fields["all_greedy"] = bool(fields["greedy"].all())
        fields["any_top_p"] = bool((fields["top_p"] < 1).any())
        return _Sampler([], 0, index.device, **fields)

    def pick(self, logprobs: torch.Tensor, rows: list[_Row], eos: torch.Tensor) -> list[int]:
        """Mask (allowed tokens; EOS before ``min_tokens``), then argmax or a draw per row."""
        import torch

        scores = logprobs if self.blocked is None else logprobs.masked_fill(self.blocked, float("-inf"))
        early = [len(r.generated) < r.params.min_tokens for r in rows]
        if eos.numel() and any(early):
            hold = torch.tensor(early, device=scores.device)[:, None]
            scores[:, eos] = scores[:, eos].masked_fill(hold, float("-inf"))
        picks = scores.argmax(dim=-1)
        if not self.all_greedy:
            probs = torch.softmax(scores / self.temperature, dim=-1)
            if self.any_top_p:
                ordered, order = torch.sort(probs, dim=-1, descending=True)
                drop = torch.cumsum(ordered, dim=-1) - ordered >= self.top_p
                probs = probs.scatter(1, order, ordered.masked_fill(drop, 0.0))
            cdf = torch.cumsum(probs, dim=-1)
            # 1 - random() lies in (0, 1]: the first index whose CDF reaches u * total has mass > 0
            u = [1.0 - r.rng.random() if r.rng is not None else 1.0 for r in rows]
            target = torch.tensor(u, device=cdf.device)[:, None] * cdf[:, -1:]
            drawn = torch.searchsorted(cdf, target).squeeze(1).clamp_(max=cdf.shape[-1] - 1)
            # a parallel scan may round a zero-mass token's CDF past u: keep such rows on their mode
            drawn = torch.where(probs.gather(1, drawn[:, None]).squeeze(1) > 0, drawn, picks)
            picks = torch.where(self.greedy, picks, drawn)
        return [int(t) for t in picks.tolist()]


def _batches(lengths: Sequence[int], size: int) -> list[slice]:
    """Consecutive runs of the ascending prompt ``lengths``, at most ``size`` long, whose longest prompt is
    at most twice the shortest: left padding then at most doubles a row's work, where one long prompt
    among short ones would pad every row to its length."""
    out: list[slice] = []
    start = 0
    for i, n in enumerate(lengths):
        if i > start and (i - start == size or n > 2 * lengths[start]):
            out.append(slice(start, i))
            start = i
    if lengths:
        out.append(slice(start, len(lengths)))
    return out


def _logsumexp(values: list[float]) -> float:
    """torch's: the GPU image (``scripts/gpu_check.py``) runs this engine without scipy."""
    import torch

    return float(torch.logsumexp(torch.tensor(values, dtype=torch.float64), dim=0))


def _validate(p: SamplingParams) -> None:
    if p.n < 1 or p.max_tokens < 1 or p.min_tokens < 0 or p.min_tokens > p.max_tokens:
        raise ValueError(f"need n >= 1 and 0 <= min_tokens <= max_tokens >= 1, got {p}")
    if p.temperature < 0 or not 0 < p.top_p <= 1:
        raise ValueError(f"need temperature >= 0 and 0 < top_p <= 1, got {p}")


def _describe(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"


def _eos_ids(model: Any, tokenizer: Any) -> set[int]:
    ids: set[int] = set()
    sources = [getattr(model.generation_config, "eos_token_id", None), model.config.eos_token_id]
    sources.append(tokenizer.eos_token_id)
    for value in sources:
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, list | tuple):
            ids.update(int(v) for v in value)
    return ids


def _load(identity: ModelIdentity, device: torch.device, dtype: torch.dtype) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    local = Path(identity.weights).expanduser()
    kwargs: dict[str, Any] = {}
    if not local.is_dir():
        if identity.weights.startswith(("/", ".", "~")):
            raise InputError("model folder not found", file=identity.weights, where=f"model {identity.name}")
        if identity.revision:
            kwargs["revision"] = identity.revision
    source = str(local) if local.is_dir() else identity.weights
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype, **kwargs)
    except OSError as exc:
        raise InputError(f"cannot load model: {exc}", where=f"model {identity.name} ({source})") from exc
    return tokenizer, model.to(device).eval()


@dataclass
class HFSettings:
    device: str = "cpu"
    dtype: str = "float32"
    #: GPUs one actor reserves (device cuda*)
    num_gpus: float = 0.0


def _build(model: ModelConfig, s: HFSettings, identity: ModelIdentity) -> HFEngine:
    # torch would start one thread per core in every actor; on CPU, use the cores the actor reserved
    threads = max(1, int(model.serving.num_cpus)) if s.device == "cpu" else None
    return HFEngine(
        identity, device=s.device, dtype=s.dtype, batch_size=model.serving.batch_size, num_threads=threads
    )


def _gpus(s: HFSettings) -> tuple[float, str]:
    return (float(s.num_gpus) if s.device.startswith("cuda") else 0.0), "serving.num_gpus"


ENGINE = EngineSpec(name="hf", settings=HFSettings, build=_build, gpus=_gpus, local_weights=True)
