#!/usr/bin/env bash
# Install smoot_ext from this checkout into a virtual environment (default ./.venv, override with
# SMOOT_VENV), editable, with the extras named in $1 (default: all). torch is installed first,
# pinned, and the build uses it directly (no build isolation), so a rebuild is incremental.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${SMOOT_VENV:-.venv}
EXTRAS=${1:-all}
# nvcc lives here on our machines; CUDA kernels are built when torch has CUDA and nvcc is found.
if [ -z "${CUDA_HOME:-}" ] && [ -x /usr/local/cuda/bin/nvcc ]; then export CUDA_HOME=/usr/local/cuda; fi
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
. "$VENV/bin/activate"
pip install -q setuptools wheel ninja
pip install -q torch==2.14.1 torchvision==0.29.1
pip install -q --no-build-isolation -e ".[$EXTRAS]"
python -m smoot_ext.info | sed -n 1,2p  # sed reads it all: no broken pipe under pipefail
