#pragma once
// Device helpers shared by the CUDA kernels of smoot::mask and smoot::update_k (no runtime
// or ATen headers, so that the kernel headers stay self-contained).
#include <cstdint>

namespace smoot {
namespace cuda {

constexpr unsigned kFullWarp = 0xFFFFFFFFu;

// k[b] of an int32 or int64 (B,) tensor.
__device__ __forceinline__ int64_t load_k(const void* k, bool k64, int64_t b) {
  return k64 ? static_cast<const int64_t*>(k)[b]
             : static_cast<int64_t>(static_cast<const int32_t*>(k)[b]);
}

}  // namespace cuda
}  // namespace smoot
