"""Capability matrix: what each provider supports, decided before any call."""

from __future__ import annotations

import pytest

from distalign.engines.providers import capabilities_for, prefill_mode, provider_of, require
from distalign.errors import InputError
from distalign.records.engine import Capabilities, CapabilityError


@pytest.mark.parametrize(
    ("model", "provider"),
    [
        ("openai/gpt-4o-mini", "openai"),
        ("gpt-4o-mini", "openai"),
        ("hosted_vllm/meta-llama/Llama-3.1-8B-Instruct", "hosted_vllm"),
        ("anthropic/claude-3-5-sonnet-20240620", "anthropic"),
        ("together_ai/meta-llama/Llama-3-8b-chat-hf", "together_ai"),
    ],
)
def test_provider_of(model: str, provider: str) -> None:
    assert provider_of(model) == provider


def test_unknown_provider_is_an_input_error_naming_the_model() -> None:
    with pytest.raises(InputError, match="no-such-model-xyz") as info:
        provider_of("no-such-model-xyz")
    assert info.value.where == "model.weights"


# (option_logprobs, n_samples, seed) per provider, from the verified table of the technical brief
@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("openai/gpt-4o-mini", (True, True, True)),
        ("hosted_vllm/any-served-name", (True, True, True)),
        ("together_ai/meta-llama/Llama-3-8b-chat-hf", (True, True, True)),
        ("gemini/gemini-1.5-pro", (False, True, True)),  # logprobs but no top_logprobs
        ("anthropic/claude-3-5-sonnet-20240620", (False, False, False)),
    ],
)
def test_capability_matrix(model: str, expected: tuple[bool, bool, bool]) -> None:
    caps = capabilities_for(model)
    assert (caps.option_logprobs, caps.n_samples, caps.seed) == expected
    assert caps.generate
    assert caps.allowed_tokens == model.startswith("hosted_vllm/")


def test_overrides_win_over_litellm() -> None:
    caps = capabilities_for("openai/my-server-model", {"n_samples": False, "assistant_prefill": "continue"})
    assert caps.n_samples is False and caps.option_logprobs is True


@pytest.mark.parametrize(
    ("overrides", "where"),
    [({"logprob": True}, "capabilities.logprob"), ({"seed": "yes"}, "capabilities.seed")],
)
def test_bad_overrides_name_the_key(overrides: dict, where: str) -> None:
    with pytest.raises(InputError) as info:
        capabilities_for("openai/gpt-4o-mini", overrides)
    assert info.value.where == where


def test_prefill_mode_per_provider_and_override() -> None:
    assert prefill_mode("hosted_vllm/x") == "continue"
    assert prefill_mode("anthropic/claude-3-5-sonnet-20240620") == "native"
    assert prefill_mode("openai/gpt-4o-mini") == "instruction"
    assert prefill_mode("openai/x", {"assistant_prefill": "continue"}) == "continue"
    with pytest.raises(InputError, match="instruction"):
        prefill_mode("openai/x", {"assistant_prefill": "sometimes"})


def test_require_names_every_missing_feature() -> None:
    caps = capabilities_for("anthropic/claude-3-5-sonnet-20240620")
    with pytest.raises(CapabilityError, match=r"option_logprobs, n_samples, seed") as info:
        require("anthropic/claude-3-5-sonnet-20240620", caps, option_logprobs=True, n=5, seed=True)
    assert "anthropic" in str(info.value)
    require("anthropic/claude-3-5-sonnet-20240620", caps, n=1)  # plain generation is fine
    require("openai/gpt-4o-mini", Capabilities(), option_logprobs=True, n=5, seed=True, allowed_tokens=True)


def test_bundled_prices_come_from_litellms_offline_table() -> None:
    from distalign.engines.providers import bundled_prices

    gpt4 = bundled_prices("openai/gpt-4-0613")
    assert gpt4 is not None and gpt4[0] > 0 and gpt4[1] > gpt4[0]  # output tokens cost more
    mini = bundled_prices("openai/gpt-4o-mini-2024-07-18")
    assert mini is not None and mini[0] < gpt4[0]
    assert bundled_prices("hosted_vllm/some-local-model") is None
