#!/usr/bin/env bash
# The main job: install (scripts/install.sh), train plain, SGT and SMOOT on scikit-learn's digits
# (shipped, no network), then evaluate the three side by side into one report (maps, removal
# curves, scores with paired intervals). Extra arguments go to each train.py.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh train,eval
. "${SMOOT_VENV:-.venv}/bin/activate"
OUT=runs/digits
for method in baseline sgt smoot; do
    python python/train.py --dataset digits --method "$method" --out "$OUT/$method" "$@"
done
python python/evaluate.py --checkpoints baseline="$OUT/baseline/checkpoint.pt" sgt="$OUT/sgt/checkpoint.pt" \
    smoot="$OUT/smoot/checkpoint.pt" --dataset digits --methods saliency integrated_gradients \
    --out "$OUT/report"
echo "metrics: $OUT/<method>/metrics.csv  plots: $OUT/<method>/*.png  report: $OUT/report/report.md"
