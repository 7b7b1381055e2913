// smoot::update_k on CUDA (SPEC.md; SMOOT Algorithm 2, lines 3-6) in one small kernel: one
// warp per row computes both softmaxes, ranks the top n' classes by p, and writes delta and
// k_new = clamp(k + floor(mu * delta), kmin, kmax), all in float32. rounding="trunc" takes the
// kernel's delta and rounds toward zero in ATen ops on the host side (trunc_step below): folding
// it into the kernel is a change to its body, to be made where a GPU can run its tests.
#include <ATen/Dispatch.h>
#include <ATen/ops/add.h>
#include <ATen/ops/clamp.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/isnan.h>
#include <ATen/ops/mul.h>
#include <ATen/ops/trunc.h>
#include <ATen/ops/where.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <algorithm>
#include <cstdint>
#include <limits>

#include "common/checks.h"
#include "cuda/common.cuh"
#include "cuda/update_k_kernels.cuh"

namespace smoot {
namespace cuda {
namespace {

// clamp(k + trunc(mu * delta), kmin, kmax) in k's dtype, as the kernel's floor step: the product
// rounded once in float32, the step bounded by 2**62 so that k + step cannot overflow, and a NaN
// delta giving kmin.
at::Tensor trunc_step(const at::Tensor& k, const at::Tensor& delta, float mu, int64_t kmin, int64_t kmax) {
  constexpr double kBound = 0x1p62;
  const at::Tensor t = at::trunc(at::mul(delta, static_cast<double>(mu)));
  const at::Tensor step = at::where(at::isnan(t), -kBound, at::clamp(t, -kBound, kBound)).to(at::kLong);
  return at::clamp(at::add(k.to(at::kLong), step), kmin, kmax).to(k.scalar_type());
}

std::tuple<at::Tensor, at::Tensor> update_k_cuda(const at::Tensor& logits_in,
                                                 const at::Tensor& masked_in, const at::Tensor& k_in,
                                                 double alpha, double mu, int64_t n, int64_t kmin,
                                                 int64_t kmax, c10::string_view rounding) {
  const UpdateKDims dims =
      check_update_k(logits_in, masked_in, k_in, alpha, mu, n, kmin, kmax, rounding);
  const int64_t B = dims.B, C = dims.C;
  SMOOT_CHECK_VALUE(C <= std::numeric_limits<int32_t>::max() - 32, kUpdateKOp, "logits",
                    "expected C <= 2**31 - 33 classes (32-bit indices), got C = ", C);
  constexpr int64_t kMaxRows = std::numeric_limits<int32_t>::max() * int64_t{kRowsPerBlock};
  SMOOT_CHECK_VALUE(B <= kMaxRows, kUpdateKOp, "logits", "expected B <= ", kMaxRows,
                    " rows (the CUDA grid limit), got B = ", B);

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
  if (dims.rounding == kTrunc) return {trunc_step(k, delta, static_cast<float>(mu), kmin, kmax), delta};
  return {k_new, delta};
}

}  // namespace
}  // namespace cuda
}  // namespace smoot

TORCH_LIBRARY_IMPL(smoot, CUDA, m) { m.impl("update_k", &smoot::cuda::update_k_cuda); }
