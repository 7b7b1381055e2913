#!/usr/bin/env bash
# The C++ CPU kernels (csrc/smoot.cpp, csrc/cpu) built with AddressSanitizer and
# UndefinedBehaviorSanitizer, and the op tests run on them:
#   scripts/sanitize_cpu.sh             # mask, update_k, padding and error tests, CPU backend only
#   scripts/sanitize_cpu.sh --plant oob # a planted write past a tensor's end: must fail (ASan)
#   scripts/sanitize_cpu.sh --plant ub  # a planted signed integer overflow: must fail (UBSan)
# Fails on a failing test and on any sanitizer report. The planted bugs (tests/sanitize/plant.cpp,
# checked by tests/test_sanitize.py) show that the sanitizers speak here at all.
#
# The build lies in build/sanitize/ (ninja: a rerun recompiles only what changed), with the flags
# of setup.py's CPU kernels (-fopenmp -ffp-contract=off) but -O1 -g and the sanitizers, and
# without Python's -fwrapv and -DNDEBUG, so that signed overflow and assert() are checked too.
# The tests import a copy of smoot_ext/ (build/sanitize/pkg, first on PYTHONPATH) that holds the
# sanitized _C and a _build.json of its own; the checkout's smoot_ext/ is not touched. torch is
# not instrumented: python runs with libasan preloaded, leak checks off (CPython's and torch's
# leaks are not ours), and no GPU visible (the CUDA and Triton backends are left out).
# Needs the environment of scripts/install.sh (default .venv, or SMOOT_VENV, or the active one),
# g++ with libasan (or CXX) and ninja; SANITIZE_JOBS compile jobs (default 2).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=$ROOT/build/sanitize

plant=""
case "$#:${1:-}" in
  0:) ;;
  1:--plant) plant=oob ;;
  2:--plant) plant=$2 ;;
  *) plant=bad ;;
esac
if [[ "$plant" != "" && "$plant" != oob && "$plant" != ub ]]; then
  echo "usage: $0 [--plant oob|ub]" >&2
  exit 2
fi

if [[ -z "${VIRTUAL_ENV:-}" && -f "${SMOOT_VENV:-.venv}/bin/activate" ]]; then
  # shellcheck source=/dev/null
  . "${SMOOT_VENV:-.venv}/bin/activate"
fi
CXX=${CXX:-g++}
LIBASAN=$("$CXX" -print-file-name=libasan.so)
# Preloaded beside libasan: ASan finds the __cxa_throw it wraps only in libraries loaded before it
# starts, and python itself does not load libstdc++; without it, the first C++ throw aborts.
LIBSTDCXX=$("$CXX" -print-file-name=libstdc++.so.6)
if [[ "$LIBASAN" != /* ]] || ! command -v ninja > /dev/null; then
  echo "sanitize_cpu.sh needs $CXX with libasan (found: $LIBASAN) and ninja (pip install ninja)" >&2
  exit 2
fi

# -------------------------------------------------------------------------------------- build
mkdir -p "$OUT"
if command -v flock > /dev/null; then  # one run at a time in $OUT (pytest -n runs both plants)
  exec 9> "$OUT/lock"
  flock 9
fi
# torch's headers and libraries, Python's headers, the C++ ABI and the extension suffix.
read -r TORCH_DIR PY_INCLUDE ABI EXT_SUFFIX < <(python -c "
import os, sysconfig, torch
print(os.path.dirname(torch.__file__), sysconfig.get_path('include'), int(torch._C._GLIBCXX_USE_CXX11_ABI),
      sysconfig.get_config_var('EXT_SUFFIX'))")
SANITIZE="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g -O1"
cat > "$OUT/build.ninja.new" << EOF
# Written by scripts/sanitize_cpu.sh on every run.
cxx = $CXX
cflags = -std=c++20 -fPIC -fopenmp -ffp-contract=off $SANITIZE -D_GLIBCXX_USE_CXX11_ABI=$ABI $
  -DTORCH_API_INCLUDE_EXTENSION_H -DTORCH_EXTENSION_NAME=_C -I$ROOT/csrc -isystem $TORCH_DIR/include $
  -isystem $TORCH_DIR/include/torch/csrc/api/include -isystem $PY_INCLUDE
ldflags = -shared -fopenmp $SANITIZE -L$TORCH_DIR/lib -lc10 -ltorch -ltorch_cpu -ltorch_python
rule cxx
  command = \$cxx -MMD -MF \$out.d \$cflags -c \$in -o \$out
  depfile = \$out.d
  deps = gcc
  description = CXX \$in
rule link
  command = \$cxx \$in -o \$out \$ldflags
  description = LINK \$out
EOF
objects=()
for src in csrc/smoot.cpp csrc/cpu/*.cpp; do
  obj="obj/${src%.cpp}.o"
  echo "build $obj: cxx $ROOT/$src" >> "$OUT/build.ninja.new"
  objects+=("$obj")
done
{
  echo "build lib/_C$EXT_SUFFIX: link ${objects[*]}"
  echo "build obj/plant.o: cxx $ROOT/tests/sanitize/plant.cpp"
  echo "build lib/plant.so: link obj/plant.o"
} >> "$OUT/build.ninja.new"
mv "$OUT/build.ninja.new" "$OUT/build.ninja"
if [[ -n "$plant" ]]; then target=lib/plant.so; else target=lib/_C$EXT_SUFFIX; fi
SECONDS=0
ninja -C "$OUT" -j "${SANITIZE_JOBS:-2}" "$target"
echo "sanitize_cpu.sh: build ($target) took ${SECONDS}s"

# ---------------------------------------------------------------------------- the package copy
PKG=$OUT/pkg
if [[ -z "$plant" ]]; then
  rm -rf "$PKG"
  mkdir -p "$PKG"
  tar -C "$ROOT" --exclude=__pycache__ --exclude='_C*.so' --exclude=_build.json -cf - smoot_ext | tar -C "$PKG" -xf -
  ln -s "$OUT/lib/_C$EXT_SUFFIX" "$PKG/smoot_ext/_C$EXT_SUFFIX"
  python -c "
import json, sys, torch
json.dump({'torch': torch.__version__, 'torch_cuda': torch.version.cuda, 'cuda_kernels': False,
           'why_no_cuda': 'scripts/sanitize_cpu.sh builds the CPU kernels only', 'cuda_home': None,
           'arch_list': None, 'source': sys.argv[1]}, open(sys.argv[2], 'w'), indent=1)
" "$ROOT" "$PKG/smoot_ext/_build.json"
fi

# ------------------------------------------------------------------------------------------ run
LOG=$OUT/run.log  # everything the run prints: the sanitizers report on stderr
: > "$LOG"
# python under the sanitizers' runtime, its output copied to $LOG. It runs in $OUT: in the checkout,
# python would put the checkout first on sys.path and import its smoot_ext/, not the copy.
run() {
  (cd "$OUT" && CUDA_VISIBLE_DEVICES="" PYTHONPATH="$PKG:$ROOT/tests/sanitize${PYTHONPATH:+:$PYTHONPATH}" \
    LD_PRELOAD="$LIBASAN $LIBSTDCXX${LD_PRELOAD:+ $LD_PRELOAD}" \
    ASAN_OPTIONS="detect_leaks=0:abort_on_error=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}" \
    UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}" \
    python "$@") 2>&1 | tee -a "$LOG"
}
# --capture=sys: pytest must not swallow what the sanitizers write to file descriptor 2.
PYTEST=(-m pytest -q -p no:cacheprovider --capture=sys -p cpu_only)
TESTS=(test_mask.py test_update_k.py test_mask_padding.py test_errors.py)
SECONDS=0
status=0
if [[ -n "$plant" ]]; then
  SMOOT_PLANT_MODE=$plant SMOOT_PLANT_LIBRARY=$OUT/lib/plant.so run "${PYTEST[@]}" "$ROOT/tests/sanitize/plant_case.py" || status=$?
else
  # A silent fallback to the checkout's unsanitized _C would pass unchecked: make sure it is ours.
  run -c "
import sys, smoot_ext
if smoot_ext._C.__file__ != sys.argv[1]:
    sys.exit(f'smoot_ext._C loads from {smoot_ext._C.__file__}, not the sanitized {sys.argv[1]}')
" "$PKG/smoot_ext/_C$EXT_SUFFIX" || status=$?
  if [[ "$status" == 0 ]]; then
    run "${PYTEST[@]}" "${TESTS[@]/#/$ROOT/tests/}" || status=$?
  fi
fi
echo "sanitize_cpu.sh: tests took ${SECONDS}s (exit status $status)"
if grep -qE "ERROR: [A-Za-z]+Sanitizer|Sanitizer: CHECK failed|runtime error:" "$LOG"; then
  echo "sanitize_cpu.sh: FAILED: sanitizer reports above (copied to $LOG)" >&2
  exit 1
fi
if [[ "$status" != 0 ]]; then
  echo "sanitize_cpu.sh: FAILED: exit status $status" >&2
  exit 1
fi
echo "sanitize_cpu.sh: passed, no sanitizer reports"
