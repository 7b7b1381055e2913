// smoot::update_k on CUDA (SPEC.md; SMOOT Algorithm 2, lines 3-6) in one small kernel: one
// warp per row computes both softmaxes, ranks the top n' classes by p, and writes delta and
// k_new = clamp(k + floor(mu * delta), kmin, kmax), all in float32.
#include <ATen/Dispatch.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <algorithm>
#include <cstdint>
#include <limits>

#include "common/keys.h"
#include "cuda/common.cuh"

namespace smoot {
namespace cuda {
namespace {

constexpr int kRowsPerBlock = 8;  // one warp per row

struct UpdateArgs {
  const void* k;
  void* k_new;
  float* delta;
  int64_t B;
  int C, n_top;
  bool k64;
  float alpha, beta, mu;  // beta = 1 - alpha, rounded once on the host as the reference does
  int64_t kmin, kmax;
};

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(kFullWarp, v, o));
  return v;
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(kFullWarp, v, o);
  return v;
}

// softmax(l)[c] = exp(l[c] - max) / sum, with max and sum of the row (whole warp).
template <typename L>
struct Softmax {
  const L* l;
  float max, sum;

  __device__ Softmax(const L* row, int C) : l(row) {
    const int lane = threadIdx.x & 31;
    float m = -std::numeric_limits<float>::infinity();
    for (int c = lane; c < C; c += 32) m = fmaxf(m, static_cast<float>(row[c]));
    max = warp_max(m);
    float s = 0.0f;
    for (int c = lane; c < C; c += 32) s += expf(static_cast<float>(row[c]) - max);
    sum = warp_sum(s);
  }
  __device__ float operator()(int c) const { return expf(static_cast<float>(l[c]) - max) / sum; }
};

// Classes ranked by p descending, ties to the lower index, as torch.sort(descending=True,
// stable=True): float_key orders the p values, NaN first.
struct Ranked {
  uint32_t key;
  int idx;
};

__device__ __forceinline__ bool ranks_before(const Ranked& a, const Ranked& b) {
  return a.key > b.key || (a.key == b.key && a.idx < b.idx);
}

template <typename L>
__global__ void __launch_bounds__(kRowsPerBlock * 32)
    update_k_kernel(const L* __restrict__ logits, const L* __restrict__ logits_masked, const UpdateArgs a) {
  const int lane = threadIdx.x & 31;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kRowsPerBlock + (threadIdx.x >> 5);
  if (row >= a.B) return;  // warp-uniform
  const int C = a.C;
  const Softmax<L> p(logits + row * C, C);
  const Softmax<L> q(logits_masked + row * C, C);

  // The i-th ranked class is the best one ranked after the (i-1)-th.
  Ranked prev{0u, -1};
  bool first = true;
  float delta1 = 0.0f, sum2 = 0.0f;
  for (int i = 0; i < a.n_top; ++i) {
    Ranked best{0u, std::numeric_limits<int>::max()};
    for (int c = lane; c < C; c += 32) {
      const Ranked cand{float_key(p(c)), c};
      if ((first || ranks_before(prev, cand)) && (best.idx == std::numeric_limits<int>::max() ||
                                                  ranks_before(cand, best)))
        best = cand;
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
      const Ranked other{__shfl_xor_sync(kFullWarp, best.key, o), __shfl_xor_sync(kFullWarp, best.idx, o)};
      if (other.idx != std::numeric_limits<int>::max() &&
          (best.idx == std::numeric_limits<int>::max() || ranks_before(other, best)))
        best = other;
    }
    // n' <= C, so a class is always left; every lane holds the same best.
    const float d = __fsub_rn(q(best.idx), p(best.idx));
    if (i == 0)
      delta1 = d;
    else
      sum2 = __fadd_rn(sum2, d);
    prev = best;
    first = false;
  }
  if (lane != 0) return;
  const float delta2 = a.n_top > 1 ? __fdiv_rn(sum2, static_cast<float>(a.n_top - 1)) : 0.0f;
  const float delta = __fadd_rn(__fmul_rn(a.alpha, delta1), __fmul_rn(a.beta, delta2));
  a.delta[row] = delta;
  // floor and convert in one step: NaN gives INT64_MIN (as the reference's cast on x86),
  // +-inf saturate; the step is bounded before the add so that it cannot overflow.
  constexpr int64_t kBound = int64_t{1} << 62;
  int64_t step = __float2ll_rd(__fmul_rn(a.mu, delta));
  step = step < -kBound ? -kBound : (step > kBound ? kBound : step);
  int64_t k = load_k(a.k, a.k64, row) + step;
  k = k < a.kmin ? a.kmin : (k > a.kmax ? a.kmax : k);
  if (a.k64)
    static_cast<int64_t*>(a.k_new)[row] = k;
  else
    static_cast<int32_t*>(a.k_new)[row] = static_cast<int32_t>(k);
}

constexpr const char* kOp = "smoot::update_k (CUDA kernel)";

std::tuple<at::Tensor, at::Tensor> update_k_cuda(const at::Tensor& logits_in,
                                                 const at::Tensor& masked_in, const at::Tensor& k_in,
                                                 double alpha, double mu, int64_t n, int64_t kmin,
                                                 int64_t kmax) {
  TORCH_CHECK_VALUE(logits_in.is_cuda(), kOp, ": logits: expected a CUDA tensor, got one on ",
                    logits_in.device());
  check_on_device(masked_in, kOp, "logits_masked", logits_in);
  check_on_device(k_in, kOp, "k", logits_in);
  TORCH_CHECK_VALUE(logits_in.dim() == 2, kOp, ": logits: expected a 2-D (B, C) tensor, got shape ",
                    logits_in.sizes());
  TORCH_CHECK_VALUE(masked_in.sizes() == logits_in.sizes(), kOp,
                    ": logits_masked: expected logits' shape ", logits_in.sizes(), ", got ",
                    masked_in.sizes());
  TORCH_CHECK_TYPE(at::isFloatingType(logits_in.scalar_type()), kOp,
                   ": logits: expected a floating-point dtype, got ", logits_in.scalar_type());
  TORCH_CHECK_TYPE(at::isFloatingType(masked_in.scalar_type()), kOp,
                   ": logits_masked: expected a floating-point dtype, got ", masked_in.scalar_type());
  TORCH_CHECK_TYPE(k_in.scalar_type() == at::kInt || k_in.scalar_type() == at::kLong, kOp,
                   ": k: expected dtype int32 or int64, got ", k_in.scalar_type());
  const int64_t B = logits_in.size(0), C = logits_in.size(1);
  TORCH_CHECK_VALUE(k_in.dim() == 1 && k_in.size(0) == B, kOp, ": k: expected shape (", B,
                    ",), got ", k_in.sizes());
  TORCH_CHECK_VALUE(n >= 1, kOp, ": n: expected >= 1, got ", n);
  TORCH_CHECK_VALUE(kmin <= kmax, kOp, ": kmin: expected kmin <= kmax, got kmin = ", kmin,
                    " > kmax = ", kmax);
  TORCH_CHECK_VALUE(B == 0 || C >= 1, kOp, ": logits: expected at least one class, got shape ",
                    logits_in.sizes());
  TORCH_CHECK_VALUE(C <= std::numeric_limits<int32_t>::max() - 32, kOp, ": logits: C = ", C,
                    " classes exceed the 32-bit index range");
  TORCH_CHECK_VALUE(B <= std::numeric_limits<int32_t>::max() * int64_t{kRowsPerBlock}, kOp,
                    ": logits: B = ", B, " rows exceed the CUDA grid limit");

  c10::cuda::CUDAGuard guard(logits_in.device());
  // Both logits in one dtype: their common one, else float32 (the reference's compute type).
  const bool same = masked_in.scalar_type() == logits_in.scalar_type();
  const at::Tensor logits = same ? logits_in.contiguous() : logits_in.to(at::kFloat).contiguous();
  const at::Tensor masked = same ? masked_in.contiguous() : masked_in.to(at::kFloat).contiguous();
  const at::Tensor k = k_in.contiguous();
  at::Tensor k_new = at::empty_like(k);
  at::Tensor delta = at::empty({B}, logits.options().dtype(at::kFloat));
  if (B == 0) return {k_new, delta};

  const UpdateArgs a{k.data_ptr(), k_new.data_ptr(), delta.data_ptr<float>(), B, static_cast<int>(C),
                     static_cast<int>(std::min<int64_t>(n, C)), k.scalar_type() == at::kLong,
                     static_cast<float>(alpha), static_cast<float>(1.0 - alpha),
                     static_cast<float>(mu), kmin, kmax};
  const unsigned grid = static_cast<unsigned>((B + kRowsPerBlock - 1) / kRowsPerBlock);
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, logits.scalar_type(), "smoot_update_k_cuda", [&] {
    update_k_kernel<scalar_t><<<grid, kRowsPerBlock * 32, 0, stream>>>(
        logits.data_ptr<scalar_t>(), masked.data_ptr<scalar_t>(), a);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return {k_new, delta};
}

}  // namespace
}  // namespace cuda
}  // namespace smoot

TORCH_LIBRARY_IMPL(smoot, CUDA, m) { m.impl("update_k", &smoot::cuda::update_k_cuda); }
