// smoot::mask on the CPU (SPEC.md), entry: checks, the ISA switch, the rows split over threads.
// Per row: select (cpu/mask_select.h: unit scores -> keys -> radix select -> mask), then fill
// (cpu/mask_fill.h: range or mean -> Philox -> output). Rows are independent and each row's
// work is fixed, so the output does not depend on the thread count.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <torch/library.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <string>

#include "common/checks.h"
#include "cpu/avx2.h"
#include "cpu/isa.h"
#include "cpu/mask_fill.h"
#include "cpu/mask_select.h"

namespace smoot {
namespace cpu {
namespace {

// The instruction set of the row loops: SMOOT_CPU_ISA=baseline|avx2 forces one (the tests
// run both); unset or "auto" takes AVX2 where the CPU has it.
bool use_avx2() {
  const char* v = std::getenv("SMOOT_CPU_ISA");
  const std::string isa = v ? v : "";
#ifdef SMOOT_HAVE_AVX2_PATH
  const bool has = cpu_has_avx2();
#else
  const bool has = false;
#endif
  if (isa.empty() || isa == "auto") return has;
  if (isa == "baseline") return false;
  TORCH_CHECK_VALUE(isa == "avx2", "SMOOT_CPU_ISA: expected 'auto', 'baseline' or 'avx2', got '",
                    isa, "'");
  TORCH_CHECK_VALUE(has, "SMOOT_CPU_ISA: 'avx2' was asked for, but this CPU or build has no AVX2");
  return true;
}

struct RowArgs {
  int64_t S;
  bool use_abs;
  FillArgs fill;
};

// Hardware prefetchers learn a stream only after some misses, and each row is a few short
// streams: when the inputs are not in cache (the op runs between other work) a row would
// wait on DRAM without this.
template <typename T>
void prefetch_l2(const T* p, int64_t n) {
  const char* c = reinterpret_cast<const char*>(p);
  const int64_t bytes = std::min<int64_t>(n * static_cast<int64_t>(sizeof(T)), 64 * 1024);
  for (int64_t off = 0; off < bytes; off += 64) __builtin_prefetch(c + off, 0, 2);
}

// Rows begin .. end - 1 of the batch, with their scratch.
template <bool kAvx2, typename x_t, typename score_t>
void mask_rows(int64_t begin, int64_t end, const int64_t* k, const score_t* score, const x_t* x,
               const float* xf, uint8_t* mask, x_t* out, const RowArgs& a) {
  const int64_t G = a.fill.G, S = a.S, M = a.fill.M;
  SelectScratch ss(M);
  FillScratch fs;
  for (int64_t b = begin; b < end; ++b) {
    if (b + 1 < end) {  // the next row's inputs, into L2 while this row computes
      prefetch_l2(score + (b + 1) * S * M, S * M);
      prefetch_l2(x + (b + 1) * G * M, G * M);
    }
    select_row(k[b], score + b * S * M, S, M, a.use_abs, mask + b * M, ss);
    fill_row<kAvx2>(b, k[b], x + b * G * M, xf ? xf + b * G * M : nullptr, mask + b * M,
                    out + b * G * M, a.fill, fs);
  }
}

#ifdef SMOOT_HAVE_AVX2_PATH
// The same, with everything it calls inlined and compiled for AVX2: 8-lane key, select, range
// and fill loops. Integer ops and unfused float ops (no FMA in this target) keep it exact.
template <typename x_t, typename score_t>
[[gnu::target("avx2,f16c"), gnu::flatten]] void mask_rows_avx2(int64_t begin, int64_t end,
                                                          const int64_t* k, const score_t* score,
                                                          const x_t* x, const float* xf,
                                                          uint8_t* mask, x_t* out,
                                                          const RowArgs& a) {
  mask_rows<true>(begin, end, k, score, x, xf, mask, out, a);
}
#endif

std::tuple<at::Tensor, at::Tensor> mask_cpu(const at::Tensor& x_in, const at::Tensor& score_in,
                                            const at::Tensor& k_in, bool use_abs,
                                            c10::string_view fill_name, double value,
                                            int64_t seed, int64_t offset) {
  const MaskDims d = check_mask(x_in, score_in, k_in, fill_name, offset);
  const int64_t B = d.B, G = d.G, S = d.S, M = d.M;
  SMOOT_CHECK_VALUE(M <= std::numeric_limits<uint32_t>::max(), kMaskOp, "x",
                    "expected M < 2**32 units (32-bit indices), got M = ", M);
  const at::Tensor k = k_in.to(at::kLong).contiguous();
  const int64_t* kp = k.data_ptr<int64_t>();
  check_k_in_range(kp, B, M);

  const at::Tensor x = x_in.contiguous();
  // float16 -> float32 is exact, and ATen's conversion vectorises where c10::Half's scalar
  // one in our loops does not: score is read as float32, and so is x for the uniform fill's
  // range.
  const at::Tensor score = score_in.scalar_type() == at::kHalf ? score_in.to(at::kFloat).contiguous()
                                                                : score_in.contiguous();
  const bool x_half = x.scalar_type() == at::kHalf && d.fill == Fill::kUniform;
  const at::Tensor xf = x_half ? x.to(at::kFloat) : at::Tensor();
  at::Tensor out = at::empty_like(x);
  at::Tensor mask = at::empty({B, M}, x.options().dtype(at::kBool));
  if (B == 0 || M == 0) return {out, mask};

  [[maybe_unused]] const bool avx2 = use_avx2();
  const RowArgs args{S, use_abs,
                     FillArgs{G, M, d.fill, value, static_cast<uint64_t>(seed),
                              static_cast<uint64_t>(offset)}};
  // Enough rows per task to amortise the scratch allocation.
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(1, M * (G + S)));
  uint8_t* mp = reinterpret_cast<uint8_t*>(mask.data_ptr<bool>());  // bool bytes, 0 or 1
  const float* xfp = x_half ? xf.data_ptr<float>() : nullptr;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "smoot::mask", [&] {
    using x_t = scalar_t;
    const x_t* xp = x.data_ptr<x_t>();
    x_t* op = out.data_ptr<x_t>();
    AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, score.scalar_type(), "smoot::mask", [&] {
      const scalar_t* sp = score.data_ptr<scalar_t>();
      at::parallel_for(0, B, grain, [&](int64_t begin, int64_t end) {
#ifdef SMOOT_HAVE_AVX2_PATH
        if (avx2) return mask_rows_avx2(begin, end, kp, sp, xp, xfp, mp, op, args);
#endif
        mask_rows<false>(begin, end, kp, sp, xp, xfp, mp, op, args);
      });
    });
  });
  return {out, mask};
}

}  // namespace
}  // namespace cpu

const char* cpu_isa() { return cpu::use_avx2() ? "avx2" : "baseline"; }

}  // namespace smoot

TORCH_LIBRARY_IMPL(smoot, CPU, m) { m.impl("mask", &smoot::cpu::mask_cpu); }
