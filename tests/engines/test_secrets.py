"""Secrets never reach a stored message: a provider error echoing the key is masked before it is cut."""

from __future__ import annotations

import json

import pytest

from distalign.engines.litellm_engine import LiteLLMEngine
from distalign.engines.secrets import looks_like_key, mask
from distalign.records.engine import GenerateRequest, Message, ModelIdentity, SamplingParams
from tests.engines.openai_stub import Fault, OpenAIStub, openai_stub_fixture  # noqa: F401

SECRET = "sk-proj-Zq8vN3kLp0XyT7wRb2Jm5sQe9Hc4"
TOKEN = "hf_Kd93nVx0PqLr7TzWm2Ys5Bc8"
#: the engine cuts an error message to this many characters (``LiteLLMEngine._fail``)
LIMIT = 400


def _pieces(secret: str, n: int = 6) -> list[str]:
    return [secret[i : i + n] for i in range(len(secret) - n + 1)]


def test_a_key_echoed_at_every_offset_around_the_length_limit_never_survives(
    openai_stub: OpenAIStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An OpenAI-style 401 whose message quotes the key (and a secret-named variable's value), with the key
    placed at every offset across the cut: no 6-character piece of either secret is in any error."""
    monkeypatch.setenv("DISTALIGN_TEST_KEY", SECRET)
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    requests = []
    for pad in range(LIMIT - 140, LIMIT + 10):
        message = f"Incorrect API key provided: {'x' * pad}{SECRET} (token {TOKEN}). See the docs."
        body = json.dumps({"error": {"message": message, "type": "invalid_request_error", "code": 401}})
        openai_stub.on_marker(f"PAD{pad}.", Fault(status=401, body=body), always=True)
        requests.append(GenerateRequest(messages=(Message("user", f"PAD{pad}."),), params=SamplingParams()))
    engine = LiteLLMEngine(
        ModelIdentity(name="stub", weights="openai/stub"),
        api_base=openai_stub.base_url,
        api_key_env="DISTALIGN_TEST_KEY",
        max_retries=0,
        max_concurrency=16,
    )
    errors = [r.error or "" for r in engine.generate(requests)]
    assert all(e.startswith("auth") or "401" in e or "uthentication" in e for e in errors), errors[:2]
    assert any("***" in e for e in errors)  # the key was there, and masked
    leaks = [e for e in errors for piece in _pieces(SECRET) + _pieces(TOKEN) if piece in e]
    assert not leaks, leaks[:1]


def test_mask_replaces_every_occurrence_and_leaves_short_values_alone() -> None:
    env = {"OPENAI_API_KEY": "sk-abcdef123456", "MY_SECRET": "s3cr3t-value", "RETRIES": "3", "X_TOKEN": "1"}
    text = "a sk-abcdef123456 b s3cr3t-value c sk-abcdef123456 3 1"
    assert mask(text, environ=env) == "a *** b *** c *** 3 1"


@pytest.mark.parametrize(
    ("value", "is_key"),
    [
        ("OPENAI_API_KEY", False),
        ("MY_KEY_2", False),
        ("sk-abc", True),
        ("hf_abcdefghijk", True),
        ("Zq8vN3kLp0XyT7wRb2Jm5sQe9Hc4aa", True),
        ("openai_api_key", False),
    ],
)
def test_a_pasted_key_is_told_from_a_variable_name(value: str, is_key: bool) -> None:
    assert looks_like_key(value) is is_key
