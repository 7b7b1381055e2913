#!/usr/bin/env bash
# Install (scripts/install.sh, every extra), lint, then run the whole test suite. GPU tests skip
# without a GPU; MNIST tests skip unless SMOOT_DATA_DIR holds torchvision's MNIST folder.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh all
. "${SMOOT_VENV:-.venv}/bin/activate"
ruff check .
python -m pytest -q -p no:cacheprovider -n 2 tests "$@"  # 2 workers: CI has 2 cores
