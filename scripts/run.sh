#!/usr/bin/env bash
# The main job: install (scripts/install.sh), train SMOOT on scikit-learn's digits (shipped, no
# network), then evaluate its saliency into a report. Extra arguments go to train.py.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh train,eval
. "${SMOOT_VENV:-.venv}/bin/activate"
OUT=runs/digits-smoot
python python/train.py --dataset digits --method smoot --out "$OUT" "$@"
python python/evaluate.py --checkpoints "smoot=$OUT/checkpoint.pt" --dataset digits \
    --methods saliency integrated_gradients --out "$OUT/report"
echo "metrics: $OUT/metrics.csv  plots: $OUT/*.png  report: $OUT/report/report.md"
