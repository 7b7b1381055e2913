// smoot::update_k on the CPU (SPEC.md; SMOOT Algorithm 2, lines 3-6): softmax of both
// logits in float32, then per row: rank the classes by p (descending, ties to the lower
// index), delta from the top n' classes, k_new = clamp(k + round(mu * delta), kmin, kmax)
// with round = floor or trunc.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/softmax.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "common/checks.h"

namespace smoot {
namespace {

// a ranks before b: larger p first, NaN above everything (as torch.sort descending),
// ties to the lower class index.
bool ranks_before(const float* p, int64_t a, int64_t b) {
  const float pa = p[a], pb = p[b];
  const bool na = pa != pa, nb = pb != pb;
  if (na != nb) return na;
  if (!na && pa != pb) return pa > pb;
  return a < b;
}

struct Args {
  int64_t C, n_top;
  float alpha, one_minus_alpha, mu;
  int64_t kmin, kmax;
  Rounding rounding;
};

// One row: p, q are the row's softmax probabilities.
template <typename k_t>
void update_row(const float* p, const float* q, k_t k, k_t* k_new, float* delta, const Args& a,
                std::vector<int64_t>& order) {
  for (int64_t c = 0; c < a.C; ++c) order[c] = c;
  std::partial_sort(order.begin(), order.begin() + a.n_top, order.end(),
                    [&](int64_t x, int64_t y) { return ranks_before(p, x, y); });
  const int64_t c1 = order[0];
  const float delta1 = q[c1] - p[c1];
  float delta2 = 0.0f;
  if (a.n_top > 1) {
    for (int64_t i = 1; i < a.n_top; ++i) delta2 += q[order[i]] - p[order[i]];
    delta2 = delta2 / static_cast<float>(a.n_top - 1);
  }
  const float d = a.alpha * delta1 + a.one_minus_alpha * delta2;
  *delta = d;
  // The step, bounded so that k + step cannot overflow. A NaN delta gives kmin, as the
  // reference's float -> int64 cast does on x86 (and the CUDA kernel).
  constexpr int64_t kBound = int64_t{1} << 62;
  constexpr float kBoundF = 0x1p62f;
  const float md = a.mu * d;
  const float t = a.rounding == kTrunc ? std::trunc(md) : std::floor(md);
  const int64_t step = t != t || t <= -kBoundF ? -kBound
                       : t >= kBoundF          ? kBound
                                               : static_cast<int64_t>(t);
  const int64_t kn = std::clamp(static_cast<int64_t>(k) + step, a.kmin, a.kmax);
  *k_new = static_cast<k_t>(kn);
}

std::tuple<at::Tensor, at::Tensor> update_k_cpu(const at::Tensor& logits_in,
                                                const at::Tensor& masked_in,
                                                const at::Tensor& k_in, double alpha, double mu,
                                                int64_t n, int64_t kmin, int64_t kmax,
                                                c10::string_view rounding) {
  const UpdateKDims dims =
      check_update_k(logits_in, masked_in, k_in, alpha, mu, n, kmin, kmax, rounding);
  const int64_t B = dims.B, C = dims.C;

  // ATen's float32 softmax (max-subtracted) is the reference's own, so p and q match it
  // exactly and the ranking agrees even on near ties.
  const at::Tensor p = at::softmax(logits_in.to(at::kFloat), 1).contiguous();
  const at::Tensor q = at::softmax(masked_in.to(at::kFloat), 1).contiguous();
  const at::Tensor k = k_in.contiguous();
  at::Tensor k_new = at::empty_like(k);
  at::Tensor delta = at::empty({B}, p.options());
  // alpha and 1 - alpha rounded to float32, as the reference's float32 tensor arithmetic.
  const Args args{C, std::min(n, C), static_cast<float>(alpha), static_cast<float>(1.0 - alpha),
                  static_cast<float>(mu), kmin, kmax, dims.rounding};
  const float* pp = p.data_ptr<float>();
  const float* qp = q.data_ptr<float>();
  float* dp = delta.data_ptr<float>();
  AT_DISPATCH_INDEX_TYPES(k.scalar_type(), "smoot::update_k", [&] {
    const index_t* kp = k.data_ptr<index_t>();
    index_t* knp = k_new.data_ptr<index_t>();
    const int64_t grain = std::max<int64_t>(1, 16384 / C);
    at::parallel_for(0, B, grain, [&](int64_t begin, int64_t end) {
      std::vector<int64_t> order(C);
      for (int64_t b = begin; b < end; ++b)
        update_row(pp + b * C, qp + b * C, kp[b], knp + b, dp + b, args, order);
    });
  });
  return {k_new, delta};
}

}  // namespace
}  // namespace smoot

TORCH_LIBRARY_IMPL(smoot, CPU, m) { m.impl("update_k", &smoot::update_k_cpu); }
