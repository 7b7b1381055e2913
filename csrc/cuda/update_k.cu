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

#include "cuda/common.cuh"
#include "cuda/update_k_kernels.cuh"

namespace smoot {
namespace cuda {
namespace {

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
