#!/usr/bin/env bash
# Install (scripts/install.sh), then run the whole test suite. GPU tests skip without a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
. "${SMOOT_VENV:-.venv}/bin/activate"
python -m pytest -q -p no:cacheprovider tests "$@"
