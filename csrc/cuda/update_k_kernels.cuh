#pragma once
// Device code of smoot::update_k on CUDA (see update_k.cu); included by update_k.cu only.
#include <cmath>
#include <cstdint>
#include <limits>

#include "common/keys.h"
#include "cuda/device.cuh"

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
  // The step, bounded so that k + step cannot overflow. A NaN delta gives k_new = kmin, as
  // the reference's float -> int64 cast does on x86 (a GPU cast would give 0 instead).
  constexpr int64_t kBound = int64_t{1} << 62;
  const float t = __fmul_rn(a.mu, delta);
  int64_t step = t != t ? -kBound : __float2ll_rd(t);  // __float2ll_rd saturates +-inf
  step = step < -kBound ? -kBound : (step > kBound ? kBound : step);
  int64_t k = load_k(a.k, a.k64, row) + step;
  k = k < a.kmin ? a.kmin : (k > a.kmax ? a.kmax : k);
  if (a.k64)
    static_cast<int64_t*>(a.k_new)[row] = k;
  else
    static_cast<int32_t*>(a.k_new)[row] = static_cast<int32_t>(k);
}

}  // namespace
}  // namespace cuda
}  // namespace smoot
