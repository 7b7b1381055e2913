#pragma once
// Order-preserving keys for SPEC.md step 2: the unsigned order of float_key(u) is the order
// "smallest first, -0.0 == +0.0, NaN above +inf"; ties are broken by unit index elsewhere.
#include <cstdint>
#include <cstring>

#include "macros.h"

namespace smoot {

SMOOT_HD uint32_t float_bits(float u) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(u);
#else
  uint32_t b;
  std::memcpy(&b, &u, sizeof(b));
  return b;
#endif
}

SMOOT_HD uint32_t float_key(float u) {
  if (u != u) return 0xFFFFFFFFu;      // every NaN ranks last, as torch.sort puts it
  if (u == 0.0f) return 0x80000000u;   // -0.0 and +0.0 are one key
  const uint32_t b = float_bits(u);
  return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}

// f(score) of SPEC.md step 1, in float32.
SMOOT_HD float unit_term(float s, bool use_abs) { return use_abs ? (s < 0.0f ? -s : s) : s; }

}  // namespace smoot
