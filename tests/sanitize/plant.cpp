// Planted bugs for tests/test_sanitize.py: scripts/sanitize_cpu.sh --plant builds this file with
// the flags of the sanitized CPU kernels and calls it (plant_case.py), and must then fail, naming
// the sanitizer's report. A sanitizer that stays silent here would pass the real run silently too.
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <cstdint>

namespace {
// One element past the end of a fresh tensor: AddressSanitizer's heap-buffer-overflow.
at::Tensor write_past_end(int64_t n) {
  at::Tensor out = at::empty({n}, at::kFloat);
  float* data = out.mutable_data_ptr<float>();
  for (int64_t i = 0; i <= n; ++i) {  // <=: the off-by-one
    data[i] = 1.0f;
  }
  return out;
}

// n + 1 for n = INT64_MAX: UndefinedBehaviorSanitizer's signed integer overflow.
int64_t add_one(int64_t n) { return n + 1; }
}  // namespace

TORCH_LIBRARY(smoot_plant, m) {
  m.def("write_past_end(int n) -> Tensor", &write_past_end);
  m.def("add_one(int n) -> int", &add_one);
}
