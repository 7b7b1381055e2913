#pragma once
// Small pieces shared by the CUDA kernels of smoot::mask and smoot::update_k.
#include <ATen/core/Tensor.h>
#include <c10/cuda/CUDAException.h>
#include <c10/macros/Macros.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace smoot {
namespace cuda {

constexpr unsigned kFullWarp = 0xFFFFFFFFu;

// k[b] of an int32 or int64 (B,) tensor.
__device__ __forceinline__ int64_t load_k(const void* k, bool k64, int64_t b) {
  return k64 ? static_cast<const int64_t*>(k)[b] : static_cast<int64_t>(static_cast<const int32_t*>(k)[b]);
}

// Same device and CUDA, for every tensor argument of an op; `what` names the argument.
inline void check_on_device(const at::Tensor& t, const char* op, const char* what,
                            const at::Tensor& first) {
  TORCH_CHECK_VALUE(t.device() == first.device(), op, ": ", what,
                    ": expected a tensor on the first argument's device ", first.device(),
                    ", got one on ", t.device());
}

// Device attributes are host queries (no stream work, no sync): fine under graph capture.
inline int device_attribute(cudaDeviceAttr attr, int device) {
  int v = 0;
  C10_CUDA_CHECK(cudaDeviceGetAttribute(&v, attr, device));
  return v;
}

}  // namespace cuda
}  // namespace smoot
