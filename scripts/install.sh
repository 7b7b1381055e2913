#!/usr/bin/env bash
# Install smoot_ext into a virtual environment (default ./.venv, override with SMOOT_VENV).
# torch is installed first and pinned: the extension is built against it, so the build runs
# without pip's build isolation (which would hide torch).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${SMOOT_VENV:-.venv}
# nvcc lives here on our machines; CUDA kernels are built when torch has CUDA and nvcc is found.
if [ -z "${CUDA_HOME:-}" ] && [ -x /usr/local/cuda/bin/nvcc ]; then export CUDA_HOME=/usr/local/cuda; fi
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
. "$VENV/bin/activate"
pip install -q setuptools wheel ninja
pip install -q torch==2.14.1 torchvision==0.29.1
pip install -q --no-build-isolation -e ".[test]"
python -c "import smoot_ext; print('smoot_ext installed; backends on cpu:', smoot_ext.available_backends('cpu'))"
