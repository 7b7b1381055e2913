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
#include <c10/cuda/CUDAMacros.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <mutex>
#include <type_traits>

#include "common/checks.h"
#include "cuda/common.cuh"
#include "cuda/mask_kernels.cuh"

namespace smoot {
namespace cuda {
namespace {

// Launch geometry: which plan, block size, dynamic shared memory and row chunks.

enum class Plan { kAuto, kRow, kSplit };

struct Launch {
  Plan plan;
  int threads;     // row plan: threads per block
  size_t smem;     // dynamic shared memory: of the row kernel, or of the split decide kernel
  int64_t C;       // split plan: chunks per row
  int64_t chunk;   // split plan: units per chunk
};

Launch plan_launch(int64_t B, int64_t M, int sms, int64_t smem_limit, Plan plan) {
  // Short rows take a 256-thread block (several resident per SM), long rows 1024 threads.
  const int threads = M <= 2048 ? 256 : 1024;
  const int64_t row_smem =
      static_cast<int64_t>(threads == 256 ? row_keys_offset<256>() : row_keys_offset<1024>()) + 4 * M;
  const bool row_fits = row_smem <= smem_limit;
  if (plan == Plan::kAuto) {
    // One block per row is enough when the rows alone fill the GPU or are too short to split.
    // (A first guess; to be tuned on a GPU with benchmarks/mask_throughput.py.)
    plan = row_fits && (M <= 8192 || 3 * B >= sms) ? Plan::kRow : Plan::kSplit;
  }
  if (plan == Plan::kRow) {
    TORCH_CHECK_VALUE(row_fits, "SMOOT_CUDA_MASK_PATH=row: M = ", M, " keys need ", row_smem,
                      " bytes of shared memory, the device allows ", smem_limit);
    SMOOT_CHECK_VALUE(B <= std::numeric_limits<int32_t>::max(), kMaskOp, "x",
                      "expected B <= 2**31 - 1 rows (the CUDA grid limit), got B = ", B);
    return Launch{plan, threads, static_cast<size_t>(row_smem), 1, M};
  }
  // Chunks per row: enough blocks for about two per SM, within [kMinChunk, kMaxChunk] units.
  const int64_t want = std::max<int64_t>(1, (2 * sms + B - 1) / B);
  const int64_t chunk = std::clamp<int64_t>((M + want - 1) / want, kMinChunk, kMaxChunk);
  const int64_t C = (M + chunk - 1) / chunk;
  SMOOT_CHECK_VALUE(B * C <= std::numeric_limits<int32_t>::max(), kMaskOp, "x",
                    "expected B * chunks <= 2**31 - 1 (the CUDA grid limit), got ", B * C);
  return Launch{plan, kSplitThreads, decide_flags_offset() + static_cast<size_t>(chunk), C, chunk};
}

Plan plan_from_env() {
  const char* v = std::getenv("SMOOT_CUDA_MASK_PATH");
  if (v == nullptr || *v == '\0' || std::strcmp(v, "auto") == 0) return Plan::kAuto;
  if (std::strcmp(v, "row") == 0) return Plan::kRow;
  TORCH_CHECK_VALUE(std::strcmp(v, "split") == 0,
                    "SMOOT_CUDA_MASK_PATH: expected 'auto', 'row' or 'split', got '", v, "'");
  return Plan::kSplit;
}

// The row kernel may take up to the device's opt-in limit of dynamic shared memory. The limit is
// raised once per device, to that maximum: setting each call's own size would let two threads
// with different M interleave their set and launch.
template <typename X, typename S, int NT>
void launch_row(const MaskArgs<X, S>& a, int64_t B, size_t smem, int device, int smem_optin,
                cudaStream_t stream) {
  auto kernel = mask_row_kernel<X, S, NT>;
  static std::once_flag raised[C10_COMPILE_TIME_MAX_GPUS];
  std::call_once(raised[device], [&] {  // a host call, capture-safe
    C10_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem_optin));
  });
  kernel<<<static_cast<unsigned>(B), NT, smem, stream>>>(a);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

template <typename X, typename S>
void run_mask(const MaskArgs<X, S>& a, int64_t B, const at::Tensor& x, cudaStream_t stream) {
  const int device = x.get_device();
  const int smem_optin = device_attribute(cudaDevAttrMaxSharedMemoryPerBlockOptin, device);
  const Launch l = plan_launch(B, a.M, device_attribute(cudaDevAttrMultiProcessorCount, device),
                               smem_optin, plan_from_env());
  if (l.plan == Plan::kRow) {
    if (l.threads == 256)
      launch_row<X, S, 256>(a, B, l.smem, device, smem_optin, stream);
    else
      launch_row<X, S, 1024>(a, B, l.smem, device, smem_optin, stream);
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

std::tuple<at::Tensor, at::Tensor> mask_cuda(const at::Tensor& x_in, const at::Tensor& score_in,
                                             const at::Tensor& k_in, bool use_abs,
                                             c10::string_view fill_name, double value,
                                             int64_t seed, int64_t offset) {
  const MaskDims d = check_mask(x_in, score_in, k_in, fill_name, offset);
  const int64_t B = d.B, G = d.G, M = d.M, S = d.S;
  // 32-bit unit indices with headroom for the unrolled loops; G, S fit an int likewise.
  constexpr int64_t kMaxDim = std::numeric_limits<int32_t>::max() - (1 << 16);
  SMOOT_CHECK_VALUE(M <= kMaxDim && G <= kMaxDim && S <= kMaxDim, kMaskOp, "x",
                    "expected G, S, M below 2**31 - 2**16, got G = ", G, ", S = ", S, ", M = ", M);
  // The values of k are checked on the device (row_k): a host check would need a sync.
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
                                      k.scalar_type() == at::kLong, use_abs, d.fill, value,
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
