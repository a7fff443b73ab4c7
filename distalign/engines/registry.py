"""From a model config to an engine, its settings, identity, capabilities and pool traits.

An engine is one module that declares ``ENGINE = EngineSpec(...)`` (``engines.base``): ``serving.engine:
NAME`` finds ``distalign/engines/NAME.py`` or ``NAME_engine.py``; a dotted name (``mypkg.my_engine``)
names a module outside the package. Engine modules import their heavy dependencies (torch, vLLM,
litellm) inside functions: a sweep of API models must not import torch, and a CPU machine must not import
vLLM. Capabilities are known without loading any weights, so an impossible cell is rejected while
planning, before a GPU is reserved or a model is loaded.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import re
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import MISSING, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from distalign.engines.base import Engine, EngineSpec
from distalign.engines.model_prep import file_sha256, gguf_path, prepare_default_model
from distalign.errors import InputError
from distalign.records import config as records_config
from distalign.records.config import ModelConfig, ServingField
from distalign.records.engine import Capabilities, ModelIdentity

DEFAULT_WEIGHTS = "default"
_DECLARES = re.compile(r"^ENGINE = EngineSpec\(", re.MULTILINE)


@functools.cache
def builtin_engines() -> dict[str, EngineSpec]:
    """The engines of this package: every module of ``distalign.engines`` that declares ``ENGINE`` (found
    by that line, so the package's other modules, torch among their imports, are not imported)."""
    specs = {}
    folders = [Path(p) for p in importlib.import_module(__package__).__path__]
    for path in sorted(p for folder in folders for p in folder.glob("*.py")):
        if _DECLARES.search(path.read_text(encoding="utf-8")):
            spec = importlib.import_module(f"{__package__}.{path.stem}").ENGINE
            specs[spec.name] = spec
    return specs


@functools.cache
def _spec_of(name: str) -> EngineSpec | None:
    if "." in name:
        candidates = [name]
    else:
        candidates = [f"{__package__}.{name}", f"{__package__}.{name}_engine"]
    for module in candidates:
        try:
            spec = getattr(importlib.import_module(module), "ENGINE", None)
        except ModuleNotFoundError as exc:
            if exc.name is not None and module.startswith(exc.name):
                continue  # no such module (not a missing dependency of one)
            raise
        if isinstance(spec, EngineSpec) and (spec.name == name or module == name):
            return spec
    return None


#: the engine that serves the packaged default model (weights ``default``) where no engine is named
DEFAULT_ENGINE = "hf"


def engine_spec(model: ModelConfig) -> EngineSpec:
    """The declaration of the model's engine; an unknown engine is an InputError listing the known ones."""
    if model.serving.engine in ("", MISSING):
        raise InputError(
            f"no engine set; choose one of {', '.join(builtin_engines())} (or a module's dotted path)",
            where=f"model {model.name!r}: serving.engine",
        )
    spec = _spec_of(model.serving.engine)
    if spec is None:
        raise InputError(
            f"unknown engine {model.serving.engine!r}; known engines: {', '.join(builtin_engines())} "
            f"(or the dotted path of a module that declares ENGINE)",
            where=f"model {model.name!r}: serving.engine",
        )
    return spec


def serving_fields() -> dict[str, ServingField]:
    """Every built-in engine's settings as flat ``model.serving`` keys: (type, default) by name."""
    out: dict[str, ServingField] = {}
    for spec in builtin_engines().values():
        hints = typing.get_type_hints(spec.settings)
        for f in dataclasses.fields(spec.settings):
            out.setdefault(f.name, (hints[f.name], f.default))
    return out


def register_configs() -> None:
    """Register the cell schema with Hydra, the engines' settings included (see ``records.config``)."""
    records_config.register_configs(serving_fields())


def engine_settings(model: ModelConfig) -> Any:
    """The model's engine settings, typed by the engine's own dataclass. A key the engine does not read,
    or a value of the wrong type, is an InputError naming the model and the key."""
    spec = engine_spec(model)
    given = dict(model.serving.settings or {})
    known = [f.name for f in dataclasses.fields(spec.settings)]
    ignored = [k for k in given if k not in known]
    if ignored:
        reads = ", ".join(known) if known else "none of its own"
        raise InputError(
            f"{', '.join(ignored)} set, but the {spec.name} engine does not use "
            f"{'it' if len(ignored) == 1 else 'them'}; it reads: {reads} (and the common batch_size, "
            f"replicas, num_cpus, resources, capabilities, input/output_cost_per_token)",
            where=f"model {model.name!r}: serving.{ignored[0]}",
        )
    try:
        return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(spec.settings), given))
    except OmegaConfBaseException as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        key = getattr(exc, "full_key", "") or ""
        raise InputError(reason, where=f"model {model.name!r}: serving.{key}".rstrip(".")) from None


def check_serving(model: ModelConfig, require_keys: bool = True) -> None:
    """Every check of a model's serving config that needs no engine loaded (``require_keys`` False: API
    keys need not be set, as in a dry run)."""
    s = model.serving
    where = f"model {model.name!r}: serving"
    if s.replicas < 1:
        raise InputError(f"replicas must be at least 1, got {s.replicas}", where=where)
    if s.batch_size < 1:
        raise InputError(f"batch_size must be at least 1, got {s.batch_size}", where=where)
    for key in ("input_cost_per_token", "output_cost_per_token"):
        value = getattr(s, key)
        if value is not None and value < 0:
            raise InputError(f"must not be negative, got {value}", where=f"{where}.{key}")
    spec = engine_spec(model)
    settings = engine_settings(model)
    if spec.check is not None:
        spec.check(model, settings, require_keys)


@functools.cache
def _default_revision() -> str:
    """The packaged default model's checksum (hashed once per process; it need not be unpacked here)."""
    return file_sha256(gguf_path())


def model_identity(model: ModelConfig) -> ModelIdentity:
    """The cache identity of a model. The packaged default model is named by its checksum, not by the
    machine-specific folder it is unpacked into, so stores move between machines."""
    weights, revision = model.weights, model.revision
    if weights == DEFAULT_WEIGHTS and engine_spec(model).local_weights and not revision:
        revision = _default_revision()
    return ModelIdentity(
        name=model.name, weights=weights, revision=revision, chat_template=model.chat_template
    )


def engine_capabilities(model: ModelConfig) -> Capabilities:
    """What the model can do: its engine's declaration with the config's explicit overrides."""
    spec = engine_spec(model)
    return spec.capabilities(model, engine_settings(model))


def make_engine(model: ModelConfig) -> Engine:
    """Build (and load) the engine of a model. Called once per engine actor, never per cell."""
    spec = engine_spec(model)
    settings = engine_settings(model)
    if spec.check is not None:
        spec.check(model, settings, False)  # keys are read when called, from the actor's environment
    ident = model_identity(model)
    if spec.local_weights and model.weights == DEFAULT_WEIGHTS:
        ident = dataclasses.replace(ident, weights=str(prepare_default_model()))
    return spec.build(model, settings, ident)


@dataclass(frozen=True)
class PoolTraits:
    """How the sweep hosts a model: what ``sweep.pool`` and ``sweep.capacity`` need, engine-blind."""

    engine: str
    #: models with the same key share one pool (an API account; else the model alone)
    key: str
    #: an API account (one asyncio actor, many calls in flight) rather than local actors
    api: bool
    replicas: int
    num_cpus: float
    num_gpus: float
    #: the config key that sets ``num_gpus`` (named in capacity errors)
    gpus_source: str
    #: calls in flight on one actor (API accounts; local actors take one batch at a time)
    concurrency: int
    #: names of environment variables holding secrets this model's actor needs
    secrets: tuple[str, ...]


def pool_traits(model: ModelConfig) -> PoolTraits:
    spec = engine_spec(model)
    settings = engine_settings(model)
    s = model.serving
    if spec.api:
        account = spec.account(model, settings) if spec.account is not None else model.name
        return PoolTraits(
            spec.name,
            f"{spec.name}:{account}",
            True,
            1,
            0.0,
            0.0,
            "",
            max(1, spec.concurrency(settings)),
            spec.secrets(settings),
        )
    gpus, source = spec.gpus(settings)
    return PoolTraits(
        spec.name,
        f"{spec.name}:{model.name}",
        False,
        max(1, s.replicas),
        float(s.num_cpus),
        float(gpus),
        source,
        1,
        spec.secrets(settings),
    )


def prices(model: ModelConfig) -> tuple[float, float] | None:
    """Price per (input, output) token: the config's, else the engine's own table (None: unknown)."""
    s = model.serving
    if s.input_cost_per_token is not None or s.output_cost_per_token is not None:
        return s.input_cost_per_token or 0.0, s.output_cost_per_token or 0.0
    return engine_spec(model).prices(model)


def serving_params(model: ModelConfig) -> dict[str, Any]:
    """How a model is served, as flat ``serving.KEY`` values for a record (secrets only by their
    variable's name)."""
    settings = dataclasses.asdict(engine_settings(model))
    return {"serving.engine": model.serving.engine, **{f"serving.{k}": v for k, v in settings.items()}}
