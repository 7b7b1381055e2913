#pragma once
// How update_k rounds mu * delta to its step (SPEC.md, update_k 4), for the CPU and the CUDA
// kernels alike. No ATen here; csrc/common/checks.h parses the op's `rounding`.

namespace smoot {

enum Rounding : int { kFloor = 0, kTrunc = 1 };

}  // namespace smoot
