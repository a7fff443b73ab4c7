#!/usr/bin/env bash
# GPU check of the hf engine (random weights of the default model's architecture; bfloat16 and float32):
# throughput against plain transformers, and batched vs one-at-a-time option distributions.
# Needs only python with torch, transformers and numpy. See scripts/gpu_check.py for what it measures.
#
#   bash scripts/gpu-check.sh --pack   # here: write build/gpu-check/ (config + tokenizer, a few MB)
#   bash scripts/gpu-check.sh          # on the GPU machine, with build/gpu-check/ brought along
#   bash scripts/gpu-check.sh --cpu    # the same on the CPU with a tiny model (what the tests run)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-$(command -v python3 || command -v python)}"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
exec "$PYTHON" "$ROOT/scripts/gpu_check.py" "$@"
