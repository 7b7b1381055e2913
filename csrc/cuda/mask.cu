// smoot::mask on CUDA (SPEC.md). Per row: unit scores -> order-preserving keys (formed on the
// fly, never stored in global memory) -> MSB-first radix select with 8-bit digits over
// shared-memory histograms -> the k-th smallest key T and how many units with key T to take
// (ties by index, block-wide prefix counts) -> mask, fill range and Philox fill.
//
// Two launch plans, chosen per call on the host (no host-device sync in either):
//  - "row":   one block per row; the row's keys live in shared memory (M * 4 bytes), so the
//             score is read once and x twice (range, then fill). For short rows or many rows.
//  - "split": several blocks per row, so that B = 1 with M = 150528 still fills the GPU. Each
//             digit round is one launch; a block histograms its chunk of the row in shared
//             memory and adds it to the row's global histogram with atomics. Every later block
//             replays the selection from those (tiny) histograms, so no block waits on another.
//             Then one launch decides the mask and reduces the fill range per chunk, and one
//             fills. Keys are recomputed from the score in each pass instead of being stored.
// Both plans stop the radix rounds early once the picked bin is taken whole (then every key
// with that prefix is masked), which skips the last round(s) for most real-valued scores.
// SMOOT_CUDA_MASK_PATH=row|split forces a plan (tests exercise both); default "auto".
#include <ATen/Dispatch.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/zeros.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <type_traits>

#include "cuda/common.cuh"
#include "cuda/mask_kernels.cuh"

namespace smoot {
namespace cuda {
namespace {

Plan plan_from_env() {
  const char* v = std::getenv("SMOOT_CUDA_MASK_PATH");
  if (v == nullptr || *v == '\0' || std::strcmp(v, "auto") == 0) return Plan::kAuto;
  if (std::strcmp(v, "row") == 0) return Plan::kRow;
  if (std::strcmp(v, "split") == 0) return Plan::kSplit;
  TORCH_CHECK_VALUE(false, "SMOOT_CUDA_MASK_PATH: expected 'auto', 'row' or 'split', got '", v, "'");
}

template <typename X, typename S, int NT>
void launch_row(const MaskArgs<X, S>& a, int64_t B, size_t smem, cudaStream_t stream) {
  auto kernel = mask_row_kernel<X, S, NT>;
  if (smem > 48 * 1024)  // above the default limit, opt in (a host call, capture-safe)
    C10_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                        static_cast<int>(smem)));
  kernel<<<static_cast<unsigned>(B), NT, smem, stream>>>(a);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

template <typename X, typename S>
void run_mask(const MaskArgs<X, S>& a, int64_t B, const at::Tensor& x, cudaStream_t stream) {
  const int device = x.get_device();
  const Launch l = plan_launch(B, a.M, device_attribute(cudaDevAttrMultiProcessorCount, device),
                               device_attribute(cudaDevAttrMaxSharedMemoryPerBlockOptin, device),
                               plan_from_env());
  if (l.plan == Plan::kRow) {
    if (l.threads == 256)
      launch_row<X, S, 256>(a, B, l.smem, stream);
    else
      launch_row<X, S, 1024>(a, B, l.smem, stream);
    return;
  }
  const auto opts = x.options();
  const at::Tensor hist = at::zeros({B, kRounds, kBins}, opts.dtype(at::kInt));
  const at::Tensor chunk_hist = at::empty({B * l.C, kBins}, opts.dtype(at::kInt));
  static_assert(sizeof(Range) == 4 * sizeof(float), "Range is stored as 4 floats");
  const at::Tensor part = at::empty({B * l.C * a.G, 4}, opts.dtype(at::kFloat));
  const Split sp{static_cast<int>(l.C), static_cast<int>(l.chunk),
                 reinterpret_cast<uint32_t*>(hist.data_ptr<int32_t>()),
                 reinterpret_cast<uint32_t*>(chunk_hist.data_ptr<int32_t>()),
                 reinterpret_cast<Range*>(part.data_ptr<float>())};
  const unsigned grid = static_cast<unsigned>(B * l.C);
  for (int r = 0; r < kRounds; ++r) {
    split_hist_kernel<X, S><<<grid, kSplitThreads, 0, stream>>>(a, sp, r);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
  split_decide_kernel<X, S><<<grid, kSplitThreads, l.smem, stream>>>(a, sp);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  split_fill_kernel<X, S><<<grid, kSplitThreads, 0, stream>>>(a, sp);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

constexpr const char* kOp = "smoot::mask (CUDA kernel)";

int parse_fill(c10::string_view fill) {
  if (fill == "uniform") return kUniform;
  if (fill == "constant") return kConstant;
  if (fill == "mean") return kMean;
  TORCH_CHECK_VALUE(false, kOp, ": fill: expected one of 'uniform', 'constant', 'mean', got '",
                    std::string(fill), "'");
}

std::tuple<at::Tensor, at::Tensor> mask_cuda(const at::Tensor& x_in, const at::Tensor& score_in,
                                             const at::Tensor& k_in, bool use_abs,
                                             c10::string_view fill_name, double value,
                                             int64_t seed, int64_t offset) {
  TORCH_CHECK_VALUE(x_in.is_cuda(), kOp, ": x: expected a CUDA tensor, got one on ", x_in.device());
  check_on_device(score_in, kOp, "score", x_in);
  check_on_device(k_in, kOp, "k", x_in);
  TORCH_CHECK_VALUE(x_in.dim() == 3, kOp, ": x: expected a 3-D (B, G, M) tensor, got shape ",
                    x_in.sizes());
  TORCH_CHECK_VALUE(score_in.dim() == 3, kOp, ": score: expected a 3-D (B, S, M) tensor, got shape ",
                    score_in.sizes());
  TORCH_CHECK_VALUE(k_in.dim() == 1, kOp, ": k: expected a 1-D (B,) tensor, got shape ", k_in.sizes());
  TORCH_CHECK_TYPE(at::isFloatingType(x_in.scalar_type()), kOp,
                   ": x: expected a floating-point dtype, got ", x_in.scalar_type());
  TORCH_CHECK_TYPE(at::isFloatingType(score_in.scalar_type()), kOp,
                   ": score: expected a floating-point dtype, got ", score_in.scalar_type());
  TORCH_CHECK_TYPE(k_in.scalar_type() == at::kInt || k_in.scalar_type() == at::kLong, kOp,
                   ": k: expected dtype int32 or int64, got ", k_in.scalar_type());
  const int64_t B = x_in.size(0), G = x_in.size(1), M = x_in.size(2), S = score_in.size(1);
  TORCH_CHECK_VALUE(score_in.size(0) == B && score_in.size(2) == M && S >= 1, kOp,
                    ": score: expected shape (B, S, M) = (", B, ", S >= 1, ", M, ") to match x ",
                    x_in.sizes(), ", got ", score_in.sizes());
  TORCH_CHECK_VALUE(k_in.size(0) == B, kOp, ": k: expected shape (", B, ",) to match x's B, got ",
                    k_in.sizes());
  // 32-bit unit indices with headroom for the unrolled loops; G, S fit an int likewise.
  constexpr int64_t kMaxDim = std::numeric_limits<int32_t>::max() - (1 << 16);
  TORCH_CHECK_VALUE(M <= kMaxDim && G <= kMaxDim && S <= kMaxDim, kOp,
                    ": x/score: expected G, S, M below 2**31 - 2**16, got G = ", G, ", S = ", S,
                    ", M = ", M);
  const int fill = parse_fill(fill_name);
  // The range of k is not checked here: that would need a host sync. Out-of-range k trips a
  // device-side assert (the Python wrapper checks first with torch._assert_async).

  c10::cuda::CUDAGuard guard(x_in.device());
  const at::Tensor x = x_in.contiguous();
  // The kernels read score as x's dtype or as float32. Any other score dtype is converted
  // to float32 first: exact for half types, and the very rounding of SPEC.md step 1 for fp64.
  const at::Tensor score = score_in.scalar_type() == x.scalar_type()
                               ? score_in.contiguous()
                               : score_in.to(at::kFloat).contiguous();
  const at::Tensor k = k_in.contiguous();
  at::Tensor out = at::empty_like(x);
  at::Tensor mask = at::empty({B, M}, x.options().dtype(at::kBool));
  if (B == 0 || M == 0) return {out, mask};
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();

  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "smoot_mask_cuda", [&] {
    auto go = [&](auto score_ptr) {
      using S_t = std::remove_const_t<std::remove_pointer_t<decltype(score_ptr)>>;
      const MaskArgs<scalar_t, S_t> a{x.data_ptr<scalar_t>(), score_ptr, k.data_ptr(),
                                      out.data_ptr<scalar_t>(), mask.data_ptr<bool>(),
                                      static_cast<int>(G), static_cast<int>(S), static_cast<int>(M),
                                      k.scalar_type() == at::kLong, use_abs, fill, value,
                                      static_cast<uint64_t>(seed), static_cast<uint64_t>(offset)};
      run_mask(a, B, x, stream);
    };
    if (score.scalar_type() == x.scalar_type())
      go(static_cast<const scalar_t*>(score.data_ptr<scalar_t>()));
    else
      go(static_cast<const float*>(score.data_ptr<float>()));
  });
  return {out, mask};
}

}  // namespace
}  // namespace cuda
}  // namespace smoot

TORCH_LIBRARY_IMPL(smoot, CUDA, m) { m.impl("mask", &smoot::cuda::mask_cuda); }
