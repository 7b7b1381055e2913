#pragma once
// The fills of SPEC.md mask step 4, for the CPU and the CUDA kernels alike. No ATen here:
// device code compares against these values; csrc/common/checks.h parses the op's `fill`.

namespace smoot {

enum Fill : int { kUniform = 0, kConstant = 1, kMean = 2 };

}  // namespace smoot
