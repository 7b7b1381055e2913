#!/usr/bin/env bash
# The main job: install (scripts/install.sh), train plain, SGT and SMOOT on scikit-learn's digits
# (shipped, no network), then evaluate the three side by side into one report (maps, removal
# curves, scores with paired intervals). Extra arguments go to each train.py.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh train,eval
. "${SMOOT_VENV:-.venv}/bin/activate"
OUT=runs/digits
# The three runs side by side: each takes one thread on digits (smoot-train's default there).
methods=(baseline sgt smoot)
pids=()
for method in "${methods[@]}"; do
    mkdir -p "$OUT/$method"
    python python/train.py --dataset digits --method "$method" --no-progress --out "$OUT/$method" "$@" \
        > "$OUT/$method/train.log" 2>&1 &
    pids+=("$!")
done
for i in "${!methods[@]}"; do
    method=${methods[$i]}
    wait "${pids[$i]}" || { tail -n 20 "$OUT/$method/train.log"; echo "training $method failed" >&2; exit 1; }
    echo "$method: $(tail -n 1 "$OUT/$method/train.log")"
done
python python/evaluate.py --checkpoints baseline="$OUT/baseline/checkpoint.pt" sgt="$OUT/sgt/checkpoint.pt" \
    smoot="$OUT/smoot/checkpoint.pt" --dataset digits --methods saliency integrated_gradients \
    --out "$OUT/report"
echo "metrics: $OUT/<method>/metrics.csv  plots: $OUT/<method>/*.png  report: $OUT/report/report.md"
