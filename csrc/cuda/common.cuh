#pragma once
// Host helpers shared by the CUDA ops smoot::mask and smoot::update_k.
#include <ATen/core/Tensor.h>
#include <c10/cuda/CUDAException.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace smoot {
namespace cuda {

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
