#!/usr/bin/env bash
# A user's `pip install .` beside a torch the package index does not list (a `+cpu` or `+cuXXX`
# wheel from the PyTorch download index, a local build): here the torch 2.13.0 CPU wheel on this
# machine's disk, hidden from the build (PIP_FIND_LINKS=" "), so that pip's isolated build sees
# only the index. The build must compile against that torch and fetch none; afterwards the
# environment's torch is untouched, `pip check` is clean, info names the torch, and the op tests run.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
TORCH=${SMOOT_CHECK_TORCH:-2.13.0}
python3 -m venv "$WORK/venv"
. "$WORK/venv/bin/activate"
pip install -q "torch==$TORCH"
before=$(python -c "import torch; print(torch.__version__)")
# a copy of the sources without the checkout's own build (objects compiled against another torch)
mkdir "$WORK/src"
tar -C "$ROOT" --exclude=./.venv --exclude=./build --exclude='*.so' --exclude=_build.json -cf - . | tar -C "$WORK/src" -xf -
( cd "$WORK/src" && time PIP_FIND_LINKS=" " pip install -q . )
after=$(python -c "import torch; print(torch.__version__)")
[ "$before" = "$after" ] || { echo "the install replaced torch $before with $after"; exit 1; }
pip check
pip install -q "smoot_ext[test]" scikit-learn
cd "$WORK"
python -m smoot_ext.info | tee "$WORK/info.txt"
grep -q "built against torch $before" "$WORK/info.txt" || { echo "info does not name torch $before"; exit 1; }
python -m pytest -q -p no:cacheprovider "$ROOT/tests/test_mask.py" "$ROOT/tests/test_update_k.py" \
    "$ROOT/tests/test_build_backend.py" "$@"
