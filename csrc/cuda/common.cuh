#pragma once
// Host helpers shared by the CUDA ops smoot::mask and smoot::update_k.
#include <c10/cuda/CUDAException.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace smoot {
namespace cuda {

// Device attributes are host queries (no stream work, no sync): fine under graph capture.
inline int device_attribute(cudaDeviceAttr attr, int device) {
  int v = 0;
  C10_CUDA_CHECK(cudaDeviceGetAttribute(&v, attr, device));
  return v;
}

}  // namespace cuda
}  // namespace smoot
