#!/usr/bin/env bash
# A user's install, checked: build a wheel with pip's build isolation on (as a plain
# `pip install .` does), install it into a second fresh venv, and from outside the checkout run
# the info command, the console script and the checkout's front end, then the tests of the install
# and the ops.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
if [ -z "${CUDA_HOME:-}" ] && [ -x /usr/local/cuda/bin/nvcc ]; then export CUDA_HOME=/usr/local/cuda; fi
python3 -m venv "$WORK/venv"
. "$WORK/venv/bin/activate"
pip install -q torch==2.14.1 torchvision==0.29.1
( cd "$ROOT" && time pip wheel -q --no-deps -w "$WORK/dist" . )
pip install -q "$(ls "$WORK"/dist/smoot_ext-*.whl)[all]"
cd "$WORK"
python -m smoot_ext.info
smoot-train --epochs 1 --no-progress --out "$WORK/run-console"
python "$ROOT/python/train.py" --epochs 1 --no-progress --out "$WORK/run-front-end"
# The whole suite ran against the checkout's build (scripts/test.sh); here, what the wheel itself
# must show: its build record and extras, the ops on every backend, the command lines.
python -m pytest -q -p no:cacheprovider -n 2 "$@" \
    "$ROOT"/tests/test_{install,build_backend,api,errors,mask,mask_padding,update_k,training_cli}.py
