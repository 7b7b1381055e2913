#pragma once
// Philox4x32-10 (Salmon et al., SC'11) and Triton's uint32 -> [0, 1) map, as SPEC.md step 6.
#include <cstdint>

#include "macros.h"

namespace smoot {

constexpr uint32_t kPhiloxM0 = 0xD2511F53u;
constexpr uint32_t kPhiloxM1 = 0xCD9E8D57u;
constexpr uint32_t kPhiloxW0 = 0x9E3779B9u;
constexpr uint32_t kPhiloxW1 = 0xBB67AE85u;

struct Philox4 {
  uint32_t w[4];
};

// One round on the counter (c0, c1, c2, c3) under the round key (k0, k1).
SMOOT_HD void philox_round(uint32_t& c0, uint32_t& c1, uint32_t& c2, uint32_t& c3, uint32_t k0,
                           uint32_t k1) {
#if defined(__CUDA_ARCH__)
  const uint32_t hi0 = __umulhi(kPhiloxM0, c0), lo0 = kPhiloxM0 * c0;
  const uint32_t hi1 = __umulhi(kPhiloxM1, c2), lo1 = kPhiloxM1 * c2;
#else
  // Both halves from one 64-bit product: SSE2 has no 32-bit mullo, but vectorises this.
  const uint64_t p0 = static_cast<uint64_t>(kPhiloxM0) * c0;
  const uint64_t p1 = static_cast<uint64_t>(kPhiloxM1) * c2;
  const uint32_t hi0 = static_cast<uint32_t>(p0 >> 32), lo0 = static_cast<uint32_t>(p0);
  const uint32_t hi1 = static_cast<uint32_t>(p1 >> 32), lo1 = static_cast<uint32_t>(p1);
#endif
  c0 = hi1 ^ c1 ^ k0;
  c1 = lo1;
  c2 = hi0 ^ c3 ^ k1;
  c3 = lo0;
}

SMOOT_HD Philox4 philox4x32_10(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3,
                               uint32_t k0, uint32_t k1) {
  SMOOT_UNROLL
  for (int r = 0; r < 10; ++r) {
    philox_round(c0, c1, c2, c3, k0, k1);
    k0 += kPhiloxW0;
    k1 += kPhiloxW1;
  }
  return Philox4{{c0, c1, c2, c3}};
}

// The four words for element counter c = n / 4 under `seed` (SPEC.md step 6).
SMOOT_HD Philox4 philox_block(uint64_t seed, uint64_t c) {
  return philox4x32_10(static_cast<uint32_t>(c), static_cast<uint32_t>(c >> 32), 0u, 0u,
                       static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
}

// Triton's scale from a non-negative int32 to [0, 1).
constexpr float kUniformScale = 4.6566127342e-10f;

// triton.language.random.uint_to_uniform_float for a uint32.
SMOOT_HD float uint_to_uniform(uint32_t x) {
  int32_t i = static_cast<int32_t>(x);
  if (i < 0) i = ~i;  // Triton's -x - 1, without signed overflow
  return static_cast<float>(i) * kUniformScale;
}

// lo + r * (hi - lo) rounded step by step (no FMA), so every backend gets the same float.
SMOOT_HD float uniform_fill(float lo, float hi, float r) {
#if defined(__CUDA_ARCH__)
  return __fadd_rn(lo, __fmul_rn(r, __fsub_rn(hi, lo)));
#else
  return lo + r * (hi - lo);
#endif
}

}  // namespace smoot
