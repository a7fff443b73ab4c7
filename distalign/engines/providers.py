"""What each litellm provider can do, decided before a sweep starts.

An unsupported parameter makes litellm raise, and ``drop_params=True`` would silently remove it (a
method that asked for log-probs would quietly get none), so capabilities are looked up here instead:
from ``litellm.get_supported_openai_params`` where litellm knows the provider, with explicit overrides
from the model's config (e.g. an OpenAI-compatible server reached as ``openai/...`` that lacks ``n``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import fields, replace
from typing import Any, Literal

from distalign.errors import InputError
from distalign.records.engine import Capabilities, CapabilityError

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # never fetch the cost map at run time

#: How an assistant prefix (``"Answer: "``) reaches the model:
#: ``continue``: a final assistant message plus vLLM's ``continue_final_message`` (the prefix is
#: continued token for token); ``native``: a final assistant message the provider continues by itself
#: (Anthropic's prefill); ``instruction``: the prefix is appended to the last user message, as a cue the
#: reply completes (for providers that would otherwise answer a trailing assistant turn afresh).
PrefillMode = Literal["continue", "native", "instruction"]
PREFILL_MODES: tuple[str, ...] = ("continue", "native", "instruction")
_PREFILL: dict[str, PrefillMode] = {"hosted_vllm": "continue", "anthropic": "native"}

#: Providers whose servers accept vLLM's structured outputs, which restrict generation to given strings.
_ALLOWED_TOKENS = frozenset({"hosted_vllm"})

#: Config keys besides the ``Capabilities`` fields that a model's ``capabilities`` mapping may carry.
EXTRA_KEYS = frozenset({"assistant_prefill"})
_CAPABILITY_KEYS = frozenset(f.name for f in fields(Capabilities))


def provider_of(model: str) -> str:
    """litellm's provider for a model string (``"openai/gpt-4o-mini"`` -> ``"openai"``)."""
    import litellm

    try:
        _, provider, _, _ = litellm.get_llm_provider(model)
    except Exception as exc:  # litellm raises BadRequestError for an unknown provider
        raise InputError(
            f"litellm cannot tell the provider of model {model!r}; prefix it with one, e.g. 'openai/', "
            "'anthropic/' or 'hosted_vllm/' (see https://docs.litellm.ai/docs/providers)",
            where="model.weights",
        ) from exc
    return str(provider)


def _supported_params(model: str, provider: str) -> list[str] | None:
    import litellm

    bare = model.split("/", 1)[1] if model.startswith(f"{provider}/") else model
    try:
        params = litellm.get_supported_openai_params(model=bare, custom_llm_provider=provider)
    except Exception:
        return None
    return list(params) if params else None


def _validate(overrides: Mapping[str, Any]) -> None:
    for key, value in overrides.items():
        if key in EXTRA_KEYS:
            continue
        if key not in _CAPABILITY_KEYS:
            known = ", ".join(sorted(_CAPABILITY_KEYS | EXTRA_KEYS))
            raise InputError(f"unknown capability {key!r} (known: {known})", where=f"capabilities.{key}")
        if not isinstance(value, bool):
            raise InputError(f"must be true or false, got {value!r}", where=f"capabilities.{key}")


def capabilities_for(model: str, overrides: Mapping[str, Any] | None = None) -> Capabilities:
    """Capabilities of ``model`` through litellm, with config ``overrides`` (field name -> bool) on top.

    A provider litellm cannot describe gets the conservative default (no log-probs, no ``n``, no seed),
    so a cell that needs them fails at planning time unless the config says otherwise.
    """
    overrides = dict(overrides or {})
    _validate(overrides)
    provider = provider_of(model)
    params = set(_supported_params(model, provider) or ())
    caps = Capabilities(
        option_logprobs={"logprobs", "top_logprobs"} <= params,
        generate=True,
        n_samples="n" in params,
        seed="seed" in params,
        allowed_tokens=provider in _ALLOWED_TOKENS,
    )
    return replace(caps, **{k: v for k, v in overrides.items() if k in _CAPABILITY_KEYS})


def prefill_mode(model: str, overrides: Mapping[str, Any] | None = None) -> PrefillMode:
    """How this model receives an assistant prefix (see ``PrefillMode``); config key ``assistant_prefill``."""
    chosen = (overrides or {}).get("assistant_prefill")
    if chosen is not None:
        if chosen not in PREFILL_MODES:
            raise InputError(
                f"must be one of {', '.join(PREFILL_MODES)}, got {chosen!r}",
                where="capabilities.assistant_prefill",
            )
        return chosen
    return _PREFILL.get(provider_of(model), "instruction")


def require(
    model: str,
    caps: Capabilities,
    *,
    option_logprobs: bool = False,
    n: int = 1,
    seed: bool = False,
    allowed_tokens: bool = False,
) -> None:
    """Raise ``CapabilityError`` naming every missing feature, so a sweep refuses an impossible cell
    before any call is made."""
    missing = [
        name
        for name, needed, has in (
            ("option_logprobs", option_logprobs, caps.option_logprobs),
            ("n_samples", n > 1, caps.n_samples),
            ("seed", seed, caps.seed),
            ("allowed_tokens", allowed_tokens, caps.allowed_tokens),
        )
        if needed and not has
    ]
    if missing:
        raise CapabilityError(
            f"model {model!r} (provider {provider_of(model)!r}) does not support {', '.join(missing)}; "
            "choose another method or model, or set capabilities."
            f"{missing[0]}=true in the model config if the server does support it"
        )


def bundled_prices(model: str) -> tuple[float, float] | None:
    """(input, output) USD per token from the price table litellm ships (read offline), for plan-time cost
    estimates of models whose config sets no prices; ``None`` when litellm does not know the model."""
    import litellm

    names = [model]
    if "/" in model:
        names.append(model.split("/", 1)[1])
    for name in names:
        entry = litellm.model_cost.get(name)
        if entry and entry.get("input_cost_per_token") is not None:
            return float(entry["input_cost_per_token"]), float(entry.get("output_cost_per_token") or 0.0)
    return None
