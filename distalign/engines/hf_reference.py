"""Plain transformers, no engine: the baseline the ``hf`` engine is measured against.

What a careful user would write by hand: prompts sorted by length and left-padded in batches, one forward
pass per batch with the LM head at the last position only for option log-probs, and ``model.generate``
per batch of requests that share their sampling settings (``num_return_sequences`` for ``n``, a mask for
allowed tokens). ``benchmarks/engine_efficiency.py`` and the GPU check (``scripts/gpu_check.py``) time
the engine against these loops on the same prompts; nothing here is used to answer a sweep.
Imports only torch and transformers, so it runs where the rest of the project is not installed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch


@dataclass(frozen=True)
class Generation:
    """The settings ``model.generate`` is called with for one group of prompts."""

    temperature: float
    top_p: float
    max_new_tokens: int
    min_new_tokens: int
    n: int
    allowed: tuple[int, ...] | None = None


def render(tokenizer: Any, messages: Sequence[Any], assistant_prefix: str = "") -> str:
    """The tokenizer's own chat template with the generation prompt, then the assistant prefix."""
    conversation = [{"role": m.role, "content": m.content} for m in messages]
    text = tokenizer.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True)
    return str(text) + assistant_prefix


def single_token_ids(tokenizer: Any, strings: Sequence[str], spaced: bool) -> list[int]:
    """Each string's own single token, and with ``spaced`` its space-prefixed one ("A", " A")."""
    ids: list[int] = []
    for s in strings:
        for variant in (s, " " + s) if spaced else (s,):
            enc = tokenizer(variant, add_special_tokens=False)["input_ids"]
            if len(enc) == 1 and enc[0] not in ids:
                ids.append(enc[0])
    return ids


def _batches(order: list[int], size: int) -> list[list[int]]:
    return [order[i : i + size] for i in range(0, len(order), size)]


def _left_padded(tokenizer: Any, ids: Sequence[Sequence[int]], device: torch.device) -> dict[str, Any]:
    length = max(len(x) for x in ids)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    input_ids = torch.tensor([[pad] * (length - len(x)) + list(x) for x in ids], device=device)
    mask = torch.tensor([[0] * (length - len(x)) + [1] * len(x) for x in ids], device=device)
    return {"input_ids": input_ids, "attention_mask": mask}


@torch.inference_mode()
def option_logprobs(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[Sequence[int]],
    candidates: Sequence[Sequence[int]],
    batch_size: int,
) -> list[list[float]]:
    """Full-vocabulary next-token log-probs of each prompt's candidate token ids."""
    device = next(model.parameters()).device
    out: list[list[float]] = [[] for _ in prompts]
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    for chunk in _batches(order, batch_size):
        inputs = _left_padded(tokenizer, [prompts[i] for i in chunk], device)
        logits = model(**inputs, use_cache=False, logits_to_keep=1).logits[:, -1, :]
        logprobs = torch.log_softmax(logits.float(), dim=-1)
        for row, i in enumerate(chunk):
            out[i] = logprobs[row, list(candidates[i])].tolist()
    return out


class _OnlyAllowed:
    """A logits processor: every token outside ``allowed`` gets -inf."""

    def __init__(self, allowed: Sequence[int], vocab: int, device: torch.device) -> None:
        self.blocked = torch.ones(vocab, dtype=torch.bool, device=device)
        self.blocked[list(allowed)] = False

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        return scores.masked_fill(self.blocked[: scores.shape[-1]], float("-inf"))


@torch.inference_mode()
def generate(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[Sequence[int]],
    settings: Sequence[Generation],
    batch_size: int,
) -> list[int]:
    """``model.generate`` over prompts grouped by settings, at most ``batch_size`` sequences per call;
    returns the tokens generated for each prompt (all its samples, EOS included, padding not)."""
    from transformers import LogitsProcessorList

    device = next(model.parameters()).device
    eos = model.generation_config.eos_token_id
    if eos is None:
        eos = tokenizer.eos_token_id
    eos_ids = set(eos if isinstance(eos, list) else [eos])
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(eos_ids)
    groups: dict[Generation, list[int]] = {}
    for i, s in enumerate(settings):
        groups.setdefault(s, []).append(i)
    produced = [0] * len(prompts)
    for s, members in groups.items():
        members.sort(key=lambda i: len(prompts[i]))
        processors = LogitsProcessorList()
        if s.allowed is not None:
            processors.append(_OnlyAllowed(s.allowed, model.config.vocab_size, device))
        for chunk in _batches(members, max(1, batch_size // s.n)):
            inputs = _left_padded(tokenizer, [prompts[i] for i in chunk], device)
            sequences = model.generate(
                **inputs,
                do_sample=s.temperature > 0,
                temperature=s.temperature if s.temperature > 0 else None,
                top_p=s.top_p if s.temperature > 0 else None,
                top_k=0,
                max_new_tokens=s.max_new_tokens,
                min_new_tokens=s.min_new_tokens,
                num_return_sequences=s.n,
                logits_processor=processors,
                pad_token_id=pad,
                eos_token_id=sorted(eos_ids),
            )
            new = sequences[:, inputs["input_ids"].shape[1] :].tolist()
            for k, tokens in enumerate(new):
                count = next((j + 1 for j, t in enumerate(tokens) if t in eos_ids), len(tokens))
                produced[chunk[k // s.n]] += count
    return produced
