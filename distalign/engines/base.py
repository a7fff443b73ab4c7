"""The narrow, batched engine interface: two request kinds, lists in and lists out, and the declaration
(``EngineSpec``) each engine module makes of its settings, capabilities and pool traits.

Requests and results are the frozen records of ``distalign.records.engine``; a backend declares its
``Capabilities`` so an impossible cell is rejected at planning time instead of mid-sweep.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from distalign.errors import InputError
from distalign.records.engine import Capabilities, Engine, ModelIdentity

__all__ = ["Engine", "EngineSpec", "local_capabilities", "no_gpus", "with_overrides"]

if TYPE_CHECKING:  # the config schema imports omegaconf, which an engine alone does not need
    from distalign.records.config import ModelConfig


def no_gpus(settings: Any) -> tuple[float, str]:
    return 0.0, "serving.num_gpus"


def with_overrides(base: Capabilities, overrides: Mapping[str, Any], where: str) -> Capabilities:
    """``base`` with a config's explicit capability overrides (``serving.capabilities``) on top."""
    known = {f.name for f in dataclasses.fields(Capabilities)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise InputError(f"unknown capabilities {unknown}; known: {', '.join(sorted(known))}", where=where)
    return dataclasses.replace(base, **{k: bool(v) for k, v in overrides.items()})


def local_capabilities(model: ModelConfig, settings: Any) -> Capabilities:
    """A local engine can do everything the engine interface asks, unless the config says otherwise."""
    return with_overrides(Capabilities(), model.serving.capabilities or {}, _where(model, "capabilities"))


def _where(model: ModelConfig, key: str) -> str:
    return f"model {model.name!r}: serving.{key}"


@dataclass(frozen=True)
class EngineSpec:
    """What the sweep needs to know about an engine, declared once as ``ENGINE`` in the engine's module.

    Validation, capacity, planning and the engine pools read it through ``engines.registry``; nothing
    outside ``distalign/engines/`` tests an engine's name. The module must import without the engine's
    heavy dependencies (they are imported inside ``build``), so a sweep can be checked where they are
    missing.
    """

    name: str
    #: a dataclass of the engine's own serving settings: its fields are its keys under ``model.serving``
    settings: type
    #: (model, its typed settings, its identity, local weights resolved) -> a loaded engine
    build: Callable[[ModelConfig, Any, ModelIdentity], Engine]
    #: (model, settings) -> what it can do, the config's ``serving.capabilities`` applied
    capabilities: Callable[[ModelConfig, Any], Capabilities] = local_capabilities
    #: pool trait: an API account (one asyncio actor per account shares its rate limits; no devices)
    #: rather than local actors that load the model on their devices
    api: bool = False
    #: API: what the models sharing one account (one pool, one rate limiter) have in common
    account: Callable[[ModelConfig, Any], str] | None = None
    #: API: calls the account's actor may have in flight
    concurrency: Callable[[Any], int] = lambda settings: 1
    #: local: GPUs one actor reserves and the config key that sets them (named in capacity errors)
    gpus: Callable[[Any], tuple[float, str]] = no_gpus
    #: names of environment variables holding this model's secrets (handed to its actor, never logged)
    secrets: Callable[[Any], tuple[str, ...]] = lambda settings: ()
    #: (model, settings, require_keys) -> raise ``InputError`` for a setting the engine cannot use
    check: Callable[[ModelConfig, Any, bool], None] | None = None
    #: the price per (input, output) token when the config sets none; None: unknown
    prices: Callable[[ModelConfig], tuple[float, float] | None] = lambda model: (0.0, 0.0)
    #: ``weights: default`` names the packaged model (a local engine loads it from a prepared folder)
    local_weights: bool = False
