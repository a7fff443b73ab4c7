"""Every check a sweep can make before it reserves a GPU, starts an actor or calls a model.

A bad grid fails here, in seconds, with a message naming the model, the method, the key or the file and
saying how to fix it, instead of half-way through an expensive run.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from distalign.errors import InputError
from distalign.records.config import CellConfig, ModelConfig
from distalign.records.engine import (
    Capabilities,
    CapabilityError,
    GenerateRequest,
    Message,
    OptionLogprobRequest,
)
from distalign.sweep.cells import CALIBRATIONS, cell_method, load_dataset, prompt_spec

_PROBE_LETTERS = ("A", "B", "C")
_PROBE_LABELS = ("Yes", "No", "Refused")


def _probe_prompt() -> object:
    """A tiny rendered prompt to ask a method which requests it would make."""
    from distalign.prompts.render import RenderedPrompt

    text = "Question?\n" + "\n".join(f"{a}. {b}" for a, b in zip(_PROBE_LETTERS, _PROBE_LABELS, strict=True))
    messages = (Message("user", text),)
    return RenderedPrompt(
        messages=messages,
        assistant_prefix="Answer:",
        letters=_PROBE_LETTERS,
        labels=_PROBE_LABELS,
        variants=(messages,) * 5,  # the paraphrase method asks one request per framing
    )


def _missing_capability(requests: Sequence[object], caps: Capabilities) -> str | None:
    for r in requests:
        if isinstance(r, OptionLogprobRequest) and not caps.option_logprobs:
            return "it returns no option log-probabilities"
        if isinstance(r, GenerateRequest):
            if not caps.generate:
                return "it cannot generate text"
            if r.params.n > 1 and not caps.n_samples:
                return f"it cannot return {r.params.n} samples per request"
            if r.params.allowed and not caps.allowed_tokens:
                return "it cannot restrict generation to the option letters"
    return None


def _check_method(cell: CellConfig, caps: Capabilities) -> None:
    model, name = cell.model, cell.method.name
    method = cell_method(cell)  # unknown names raise InputError listing the known ones
    try:
        requests = method.requests(_probe_prompt(), capabilities=caps)
        why = _missing_capability(requests, caps)
    except CapabilityError as exc:
        why = str(exc)
    if why:
        others = "seq or verbalize" if name in ("logprobs", "logp") else "another method"
        raise InputError(
            f"model {model.name!r} ({model.serving.engine}: {model.weights}) cannot serve method {name!r}: "
            f"{why}. Use method={others} for this model, serve a model that can (hf, vllm), or, if the "
            f"provider does support it, set model.serving.capabilities in the model's config",
            where=f"model={model.name} method={name}",
        )


def _check_serving(model: ModelConfig, require_keys: bool = True) -> None:
    s = model.serving
    where = f"model {model.name!r}: serving"
    if s.replicas < 1:
        raise InputError(f"replicas must be at least 1, got {s.replicas}", where=where)
    if s.engine == "vllm" and s.num_gpus and s.tensor_parallel_size > s.num_gpus:
        raise InputError(
            f"tensor_parallel_size={s.tensor_parallel_size} needs that many GPUs but num_gpus={s.num_gpus}; "
            f"set num_gpus >= tensor_parallel_size (or leave num_gpus at 0: vLLM actors reserve "
            f"tensor_parallel_size GPUs)",
            where=where,
        )
    if require_keys and s.engine == "litellm" and s.api_key_env and not os.environ.get(s.api_key_env):
        raise InputError(
            f"the API key variable {s.api_key_env} is not set in this environment; export it before "
            f"launching (keys are read from the environment only, never from configs)",
            where=f"model {model.name!r}: serving.api_key_env",
        )


def _check_models_consistent(cells: Sequence[CellConfig]) -> None:
    """One name, one model: a pool is shared by name, so two definitions under one name are an error."""
    seen: dict[str, ModelConfig] = {}
    for cell in cells:
        m = cell.model
        first = seen.setdefault(m.name, m)
        if first != m:
            raise InputError(
                "two different model configs share this name; give each its own model name",
                where=f"model {m.name!r}",
            )


def validate_cells(cells: Sequence[CellConfig], require_keys: bool = True) -> None:
    """Raise ``InputError`` for the first problem found; loads (and caches) each dataset once.
    ``require_keys=False`` (dry runs, which call no model) skips the API-key check."""
    from distalign.engines.registry import engine_capabilities
    from distalign.prompts.render import STEERINGS

    if not cells:
        raise InputError("the sweep has no cells")
    _check_models_consistent(cells)
    checked_models: dict[str, Capabilities] = {}
    checked_methods: set[tuple[str, str]] = set()
    for cell in cells:
        if cell.model.name not in checked_models:
            _check_serving(cell.model, require_keys)
            checked_models[cell.model.name] = engine_capabilities(cell.model)
        s = cell.steering
        allowed = STEERINGS.get(s.protocol)
        if allowed is None:
            raise InputError(
                f"unknown protocol {s.protocol!r}; known: {', '.join(STEERINGS)}",
                where=f"steering {s.name!r}: protocol",
            )
        if s.steering not in allowed:
            raise InputError(
                f"unknown steering {s.steering!r} for protocol {s.protocol!r}; known: {', '.join(allowed)}",
                where=f"steering {s.name!r}",
            )
        if cell.calibration.name not in CALIBRATIONS:
            raise InputError(
                f"unknown calibration {cell.calibration.name!r}; known: {', '.join(CALIBRATIONS)}",
                where="calibration",
            )
        pair = (cell.model.name, cell.method.name)
        if pair not in checked_methods:
            _check_method(cell, checked_models[cell.model.name])
            checked_methods.add(pair)
        prompt_spec(cell, cell_method(cell))
        load_dataset(cell.dataset)
