#!/usr/bin/env bash
# Everything a GPU must show, in one command, because a GPU is lent rarely and briefly. Stages
# run in first-contact order: after the build, the quickest checks of what the interpreter and a
# CPU cannot show (update_k's NaN and cross-backend steps, float64 adversarial masks, the Triton
# select paths, offsets past 2**31 elements), then the whole op suite, the mask benchmark at the
# paper's shapes with every backend the GPU has (CUDA and Triton side by side: the numbers that
# choose what backend="auto" picks), compute-sanitizer memcheck and racecheck on the small CUDA
# cases, the training-step benchmark and a one-epoch SMOOT run on MNIST. Each stage has its own
# time limit (together under 8 minutes) and a failed stage does not stop the rest. Writes
# summary.json and summary.md to OUT and prints the summary. Without a GPU it exits 2 at once.
#   bash scripts/gpu_check.sh [OUT]      # default OUT: runs/gpu_check
#   bash scripts/gpu_check.sh --list     # the stages (name, seconds, command), nothing run
set -uo pipefail
cd "$(dirname "$0")/.."

OUT=${1:-runs/gpu_check}
MNIST_DIR=${SMOOT_DATA_DIR:-data}
STAGES=(
  "build|90|python -c 'import smoot_ext' 2>/dev/null || pip install -q --no-build-isolation --no-deps -e ."
  "info|15|python -m smoot_ext.info"
  "update_k_first|20|python -m pytest -q -p no:cacheprovider tests/test_update_k.py -k 'nan or huge_mu or beside or same_as'"
  "mask_float64_adversarial|30|python -m pytest -q -p no:cacheprovider tests/test_mask.py -k 'adversarial and float64'"
  "triton_select_paths|30|python -m pytest -q -p no:cacheprovider tests/test_mask.py -k 'triton and (ties or split or long_row or digits or philox or counter or full_size)'"
  "offsets_past_2_31|20|python -m pytest -q -p no:cacheprovider tests/test_mask.py -k offsets_past_2_31"
  "op_tests|80|python -m pytest -q -p no:cacheprovider tests/test_mask.py tests/test_update_k.py tests/test_errors.py tests/test_api.py tests/test_reference.py tests/test_mask_padding.py"
  "mask_throughput|45|python benchmarks/mask_throughput.py --device cuda --shapes 256,1,784 256,3,1024 64,3,50176 1,3,150528 --out $OUT"
  "memcheck|40|bash scripts/memcheck_cuda.sh memcheck"
  "racecheck|40|bash scripts/memcheck_cuda.sh racecheck"
  "train_step|30|python benchmarks/train_step.py --devices cuda --json $OUT/train_step.json"
  "mnist_smoot_epoch|40|test -d $MNIST_DIR/MNIST || { echo 'skipped: no MNIST under SMOOT_DATA_DIR'; exit 3; }; python python/train.py --dataset mnist --data-dir $MNIST_DIR --method smoot --epochs 1 --device cuda --no-progress --out $OUT/mnist-smoot"
)

if [[ "${1:-}" == "--list" ]]; then
  printf '%s\n' "${STAGES[@]}"
  exit 0
fi
if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L 2>/dev/null | grep -q "^GPU"; then
  echo "gpu_check: no NVIDIA GPU here (nvidia-smi lists none): nothing to check" >&2
  exit 2
fi
if [[ -f .venv/bin/activate ]]; then . .venv/bin/activate; fi
if [[ -z "${CUDA_HOME:-}" && -x /usr/local/cuda/bin/nvcc ]]; then export CUDA_HOME=/usr/local/cuda; fi

mkdir -p "$OUT"
: > "$OUT/stages.tsv"
for stage in "${STAGES[@]}"; do
  IFS='|' read -r name limit cmd <<< "$stage"
  echo "== $name (limit ${limit}s)" >&2
  start=$(date +%s.%N)
  timeout --kill-after=5 "$limit" bash -c "$cmd" > "$OUT/$name.log" 2>&1
  rc=$?
  secs=$(python3 -c "print(round($(date +%s.%N) - $start, 1))")
  printf '%s\t%s\t%s\t%s\n' "$name" "$rc" "$secs" "$limit" >> "$OUT/stages.tsv"
done

python3 - "$OUT" <<'PY'
import json, pathlib, subprocess, sys
out = pathlib.Path(sys.argv[1])
status = {0: "passed", 3: "skipped", 124: "timed out", 137: "timed out"}
stages = []
for line in (out / "stages.tsv").read_text().splitlines():
    name, rc, secs, limit = line.split("\t")
    log = (out / f"{name}.log").read_text(errors="replace").splitlines()
    stages.append({"stage": name, "status": status.get(int(rc), f"failed (exit {rc})"), "seconds": float(secs),
                   "limit_s": int(limit), "tail": log[-15:]})
gpu = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True).stdout.strip()
summary = {"gpu": gpu, "stages": stages}
(out / "summary.json").write_text(json.dumps(summary, indent=1))
md = [f"# gpu_check on {gpu}", "", "| stage | status | seconds (limit) |", "|---|---|---|"]
md += [f"| {s['stage']} | {s['status']} | {s['seconds']} ({s['limit_s']}) |" for s in stages]
for s in stages:
    md += ["", f"## {s['stage']}: {s['status']}", "```", *s["tail"], "```"]
(out / "summary.md").write_text("\n".join(md) + "\n")
print("\n".join(md))
PY
awk -F'\t' '$2 != 0 && $2 != 3 { bad = 1 } END { exit bad }' "$OUT/stages.tsv"  # skipped is no failure
