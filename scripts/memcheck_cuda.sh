#!/usr/bin/env bash
# Run the CUDA kernel tests on small cases under compute-sanitizer (default tool: memcheck).
#   scripts/memcheck_cuda.sh                 # memcheck
#   scripts/memcheck_cuda.sh racecheck       # shared-memory races (also: synccheck, initcheck)
# Needs a GPU and smoot_ext built with its CUDA kernels. Large cases and CUDA-graph tests are
# left out: the sanitizer slows kernels down ~100x, and graphs need torch's caching allocator,
# which is switched off here so that the sanitizer sees every buffer's true bounds.
set -euo pipefail
cd "$(dirname "$0")/.."

tool="${1:-memcheck}"
sanitizer="$(command -v compute-sanitizer || true)"
if [[ -z "$sanitizer" ]]; then
  for dir in "${CUDA_HOME:-}" /usr/local/cuda; do
    if [[ -n "$dir" && -x "$dir/bin/compute-sanitizer" ]]; then sanitizer="$dir/bin/compute-sanitizer"; break; fi
  done
fi
if [[ -z "$sanitizer" ]]; then
  echo "compute-sanitizer not found (looked on PATH, \$CUDA_HOME/bin, /usr/local/cuda/bin)" >&2
  exit 2
fi
if ! python -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  echo "no CUDA GPU visible to torch: nothing to check" >&2
  exit 2
fi

export PYTORCH_NO_CUDA_MEMORY_CACHING=1
exec "$sanitizer" --tool "$tool" --error-exitcode 1 --target-processes all \
  python -m pytest -q -x -p no:cacheprovider \
    tests/test_mask.py tests/test_update_k.py \
    -k "cuda and not triton and not large and not graph and not random_small and not many_score_channels"
