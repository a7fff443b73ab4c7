"""docker-compose.yml, the KubeRay manifest and the deployment docs agree with the project itself: its config
keys and environment variables, its Hydra groups, its CLI, and the ports each component listens on. A rename
in the code or the configs fails here instead of silently breaking a deployment."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker/docker-compose.yml"
RAYCLUSTER = REPO / "deploy/kuberay/raycluster.yaml"
DOCS = [REPO / "docs/cluster.md", REPO / "docker/README.md", REPO / "deploy/kuberay/README.md"]
GROUPS = ("model", "dataset", "steering", "method", "calibration", "experiment")
SECRET_NAME = re.compile(r"(KEY|TOKEN|PASSWORD|SECRET)")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def raycluster() -> dict[str, Any]:
    return yaml.safe_load(RAYCLUSTER.read_text())


def _config_env_vars() -> dict[str, str]:
    """``sweep.<key>`` -> the environment variable conf/config.yaml reads it from."""
    sweep = yaml.safe_load((REPO / "conf/config.yaml").read_text())["sweep"]
    out = {}
    for key, value in sweep.items():
        m = re.fullmatch(r"\$\{oc\.env:(\w+),null\}", str(value))
        if m:
            out[key] = m.group(1)
    return out


def _api_key_vars() -> set[str]:
    keys = set()
    for path in (REPO / "conf/model").glob("*.yaml"):
        var = (yaml.safe_load(path.read_text()).get("serving") or {}).get("api_key_env")
        if var:
            keys.add(var)
    return keys


def _k8s_containers(rc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield from rc["spec"]["headGroupSpec"]["template"]["spec"]["containers"]
    for group in rc["spec"]["workerGroupSpecs"]:
        yield from group["template"]["spec"]["containers"]


def _image_pinned(image: str) -> bool:
    name, _, tag = image.rpartition(":")
    return bool(name) and bool(tag) and tag != "latest" and "/" not in tag


# -- the switches --------------------------------------------------------------------------------------------


def test_config_reads_the_documented_switches() -> None:
    env = _config_env_vars()
    assert env["ray_address"] == "RAY_ADDRESS" and env["tracking_uri"] == "MLFLOW_TRACKING_URI"
    assert env["store"] == "DISTALIGN_STORE"


def test_compose_services_ports_and_switches(compose: dict[str, Any]) -> None:
    s = compose["services"]
    assert {"postgres", "mlflow", "ray-head", "ray-worker", "ray-worker-gpu"} <= set(s)
    head_cmd = s["ray-head"]["command"]
    assert head_cmd[:3] == ["ray", "start", "--head"] and "--port=6379" in head_cmd and "--block" in head_cmd
    assert "--dashboard-host=0.0.0.0" in head_cmd
    for worker in ("ray-worker", "ray-worker-gpu"):
        assert s[worker]["command"] == ["ray", "start", "--address=ray-head:6379", "--block"]
    assert any(p.endswith(":8265:8265") for p in s["ray-head"]["ports"])
    assert any(p.endswith(":5000:5000") for p in s["mlflow"]["ports"])
    assert s["mlflow"]["environment"]["MLFLOW_PORT"] == "5000"
    assert "5000" in " ".join(s["mlflow"]["healthcheck"]["test"])
    assert s["mlflow"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "postgres:5432" in s["mlflow"]["environment"]["MLFLOW_BACKEND_STORE_URI"]
    assert isinstance(s["ray-worker"]["deploy"]["replicas"], int)
    gpu = s["ray-worker-gpu"]
    assert gpu["profiles"] == ["gpu"]
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]
    switches = _config_env_vars()
    for name in ("ray-head", "ray-worker", "ray-worker-gpu"):
        env = s[name]["environment"]
        assert env[switches["ray_address"]] == "ray-head:6379"
        assert env[switches["tracking_uri"]] == "http://mlflow:5000"
        assert switches["store"] in env


def test_compose_passes_api_keys_through_and_inlines_no_secret(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for var, value in (service.get("environment") or {}).items():
            if SECRET_NAME.search(var):
                assert re.fullmatch(r"\$\{\w+(:[-?][^}]*)?\}", str(value)), (
                    f"{name}: {var} has an inline value"
                )
        uri = (service.get("environment") or {}).get("MLFLOW_BACKEND_STORE_URI")
        if uri:
            assert re.fullmatch(r"postgresql://\w+:\$\{POSTGRES_PASSWORD\}@[\w.-]+:5432/\w+", uri)
    for var in _api_key_vars():
        for name in ("ray-head", "ray-worker", "ray-worker-gpu"):
            assert compose["services"][name]["environment"][var] == f"${{{var}:-}}", (name, var)


def test_compose_images_pinned_and_builds_exist(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        assert _image_pinned(service["image"]), f"{name}: unpinned image {service['image']}"
        build = service.get("build")
        if build:
            assert (COMPOSE.parent / build["context"] / build["dockerfile"]).is_file()


def test_raycluster_head_gpu_workers_and_secrets(raycluster: dict[str, Any]) -> None:
    assert raycluster["apiVersion"] == "ray.io/v1" and raycluster["kind"] == "RayCluster"
    head = raycluster["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    assert {p["containerPort"] for p in head["ports"]} >= {6379, 8265, 10001}
    workers = raycluster["spec"]["workerGroupSpecs"]
    assert any(
        int(w["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"]) >= 1
        for w in workers
    )
    from importlib.metadata import version

    assert raycluster["spec"]["rayVersion"] == version("ray")
    needed = {_config_env_vars()["tracking_uri"], "RAY_AUTH_TOKEN", *_api_key_vars()}
    for container in _k8s_containers(raycluster):
        assert _image_pinned(container["image"]) and "distalign-gpu" in container["image"]
        env = {e["name"]: e for e in container["env"]}
        assert needed <= set(env), needed - set(env)
        for var in needed:
            assert "secretKeyRef" in env[var].get("valueFrom", {}), f"{var} must come from a Secret"
        for var, e in env.items():
            if SECRET_NAME.search(var):
                assert "value" not in e, f"{var} is inlined in the manifest"
        assert env[_config_env_vars()["store"]]["value"].startswith("/")


# -- commands in the docs, the compose file and the images ---------------------------------------------------


def _code_snippets(text: str) -> list[str]:
    """Commands in fenced blocks (continuation lines joined) and in inline code."""
    snippets = []
    for block in re.findall(r"```(?:bash|sh)?\n(.*?)```", text, flags=re.DOTALL):
        snippets += block.replace("\\\n", " ").splitlines()
    text = re.sub(r"```.*?```", "", text, flags=re.DOTALL)
    snippets += re.findall(r"`([^`\n]+)`", text)
    return snippets


def _commands(program: str) -> list[list[str]]:
    """Every ``python launch.py ...`` (program="launch") or ``distalign ...`` command in the docs, the
    compose file's comments and the images."""
    pattern = (
        r"(?:^|\s)(?:\S*/)?python3? launch\.py\b" if program == "launch" else r"(?:^|\s)distalign\s+(?=[a-z])"
    )
    snippets = [s for p in DOCS for s in _code_snippets(p.read_text())]
    comments = [line.split("#", 1)[1] for line in COMPOSE.read_text().splitlines() if "#" in line]
    snippets += [c for c in comments if "docker compose" in c]
    found = []
    for snippet in snippets:
        for m in re.finditer(pattern, snippet):
            rest = re.split(r"\s(?:&&|\|\||\||;|#)\s?|\)", snippet[m.end() :])[0]
            found.append(shlex.split(rest))
    for dockerfile in (REPO / "docker").glob("Dockerfile.*"):
        for cmd in re.findall(r"^CMD \[(.*)\]", dockerfile.read_text(), flags=re.MULTILINE):
            argv = [a.strip().strip('"') for a in cmd.split(",")]
            if program == "launch" and argv[:2] == ["python", "launch.py"]:
                found.append(argv[2:])
        for cmd in re.findall(r"^RUN (distalign .*)$", dockerfile.read_text(), flags=re.MULTILINE):
            if program == "distalign":
                found.append(shlex.split(cmd)[1:])
    return found


def test_docs_show_the_two_compose_commands() -> None:
    for doc in (REPO / "docker/README.md", REPO / "docs/cluster.md"):
        text = doc.read_text()
        assert "docker compose -f docker/docker-compose.yml up -d" in text
        assert (
            "docker compose -f docker/docker-compose.yml exec ray-head python launch.py -m experiment="
            in text
        )


def test_every_launch_command_composes() -> None:
    from hydra import compose, initialize_config_dir

    from distalign.engines.registry import register_configs

    register_configs()
    commands = _commands("launch")
    assert len(commands) >= 8, commands
    known = {g: {p.stem for p in (REPO / "conf" / g).glob("*.yaml")} for g in GROUPS}
    for argv in commands:
        overrides = [a for a in argv if a != "-m"]
        assert all("=" in a for a in overrides), f"not a Hydra override in: {argv}"
        first = []
        for o in overrides:
            key, value = o.split("=", 1)
            for choice in value.split(","):
                if key in known:
                    assert choice in known[key], f"{key}={choice} is not in conf/{key}/ ({argv})"
            first.append(f"{key}={value.split(',')[0]}")
        with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
            try:
                compose(config_name="config", overrides=first)
            except Exception as exc:  # noqa: BLE001 - the message names the bad key
                pytest.fail(f"python launch.py {' '.join(argv)}: {exc}")


def test_every_distalign_command_parses() -> None:
    from distalign.cli import build_parser

    commands = _commands("distalign")
    assert commands, "no distalign command found in the docs"
    parser = build_parser()
    for argv in commands:
        try:
            parser.parse_args(argv)
        except SystemExit:
            pytest.fail(f"`distalign {' '.join(argv)}` is not a valid command of distalign.cli")


def test_env_vars_named_in_deployment_files_are_read_by_the_project() -> None:
    """A DISTALIGN_* variable set by a deployment file must be one the code reads."""
    code = "\n".join(p.read_text() for p in (REPO / "distalign").rglob("*.py"))
    deploy = "\n".join(
        p.read_text() for p in [COMPOSE, RAYCLUSTER, *DOCS, *(REPO / "docker").glob("Dockerfile.*")]
    )
    names = set(re.findall(r"\b(DISTALIGN_[A-Z_]+)\b", deploy))
    assert {"DISTALIGN_STORE", "DISTALIGN_MODEL_CACHE", "DISTALIGN_DATA_DIR"} <= names
    assert not [n for n in names if n not in code], sorted(n for n in names if n not in code)
