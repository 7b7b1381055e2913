#pragma once
// Hand-vectorised AVX2 loops of the CPU mask kernel, for CPUs that have AVX2 (checked at run
// time: the build itself targets baseline x86-64), where the compiler's own vectorisation is
// poor. Each gives exactly what its scalar twin in mask_fill.h / common/philox.h gives.
#include <cmath>
#include <cstdint>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define SMOOT_HAVE_AVX2_PATH 1
#include <immintrin.h>

#include "common/philox.h"

namespace smoot {

// AVX2 with F16C (every AVX2 CPU has F16C; the float16 fill uses it).
inline bool cpu_has_avx2() {
  static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("f16c");
  return has;
}

// hi and lo 32-bit halves of m * a for eight uint32 lanes: vpmuludq multiplies the even
// lanes, so the odd ones are shifted down, multiplied and blended back.
__attribute__((target("avx2"))) inline void mulhilo8(__m256i a, __m256i m, __m256i& hi,
                                                      __m256i& lo) {
  const __m256i even = _mm256_mul_epu32(a, m);
  const __m256i odd = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), m);
  hi = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
  lo = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
}

// For blocks i = 0 .. nblocks - 1 with counters (c0[i], c1[i], 0, 0), writes the four words
// of block i to words[4 i .. 4 i + 3]. c0 and c1 hold a multiple of 8 entries (the tail
// is computed and written too, so words holds 4 * that many).
__attribute__((target("avx2"))) inline void philox_blocks_avx2(const uint32_t* c0,
                                                                const uint32_t* c1,
                                                                int64_t nblocks, uint32_t k0,
                                                                uint32_t k1, uint32_t* words) {
  const __m256i m0 = _mm256_set1_epi32(static_cast<int>(kPhiloxM0));
  const __m256i m1 = _mm256_set1_epi32(static_cast<int>(kPhiloxM1));
  for (int64_t i = 0; i < nblocks; i += 8) {
    __m256i x0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c0 + i));
    __m256i x1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c1 + i));
    __m256i x2 = _mm256_setzero_si256(), x3 = _mm256_setzero_si256();
    uint32_t r0 = k0, r1 = k1;
    for (int r = 0; r < 10; ++r) {  // philox_round, eight lanes wide
      __m256i hi0, lo0, hi1, lo1;
      mulhilo8(x0, m0, hi0, lo0);
      mulhilo8(x2, m1, hi1, lo1);
      x0 = _mm256_xor_si256(_mm256_xor_si256(hi1, x1), _mm256_set1_epi32(static_cast<int>(r0)));
      x1 = lo1;
      x2 = _mm256_xor_si256(_mm256_xor_si256(hi0, x3), _mm256_set1_epi32(static_cast<int>(r1)));
      x3 = lo0;
      r0 += kPhiloxW0;
      r1 += kPhiloxW1;
    }
    // 4x8 -> 8x4 transpose: block-major words.
    const __m256i a = _mm256_unpacklo_epi32(x0, x1), b = _mm256_unpacklo_epi32(x2, x3);
    const __m256i c = _mm256_unpackhi_epi32(x0, x1), d = _mm256_unpackhi_epi32(x2, x3);
    const __m256i w04 = _mm256_unpacklo_epi64(a, b), w15 = _mm256_unpackhi_epi64(a, b);
    const __m256i w26 = _mm256_unpacklo_epi64(c, d), w37 = _mm256_unpackhi_epi64(c, d);
    __m256i* out = reinterpret_cast<__m256i*>(words + 4 * i);
    _mm256_storeu_si256(out + 0, _mm256_permute2x128_si256(w04, w15, 0x20));
    _mm256_storeu_si256(out + 1, _mm256_permute2x128_si256(w26, w37, 0x20));
    _mm256_storeu_si256(out + 2, _mm256_permute2x128_si256(w04, w15, 0x31));
    _mm256_storeu_si256(out + 3, _mm256_permute2x128_si256(w26, w37, 0x31));
  }
}

// fill_range's loop over the first M - M % 8 units: folds min and max of x over the kept ones
// (mask 0, or all when `all`) into lo and hi, and sets nan if one of them is NaN; returns
// how many units it did. The byte mask is widened with one vpmovzxbd per eight units.
__attribute__((target("avx2"))) inline int64_t kept_range_avx2(const float* x, const uint8_t* mask,
                                                               int64_t M, bool all, float& lo,
                                                               float& hi, int& nan) {
  const __m256 inf = _mm256_set1_ps(INFINITY), ninf = _mm256_set1_ps(-INFINITY);
  const __m256i keep_all = _mm256_set1_epi32(all ? -1 : 0), zero = _mm256_setzero_si256();
  __m256 vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi), vnan = _mm256_setzero_ps();
  int64_t m = 0;
  for (; m + 8 <= M; m += 8) {
    const __m256 v = _mm256_loadu_ps(x + m);
    const __m256i bits = _mm256_cvtepu8_epi32(
        _mm_loadl_epi64(reinterpret_cast<const __m128i*>(mask + m)));
    const __m256 use = _mm256_castsi256_ps(_mm256_or_si256(_mm256_cmpeq_epi32(bits, zero), keep_all));
    // minps/maxps return their second operand when one is NaN: NaN never enters vlo/vhi.
    vlo = _mm256_min_ps(_mm256_blendv_ps(inf, v, use), vlo);
    vhi = _mm256_max_ps(_mm256_blendv_ps(ninf, v, use), vhi);
    vnan = _mm256_or_ps(vnan, _mm256_and_ps(use, _mm256_cmp_ps(v, v, _CMP_UNORD_Q)));
  }
  alignas(32) float l[8], h[8];
  _mm256_store_ps(l, vlo);
  _mm256_store_ps(h, vhi);
  for (int t = 0; t < 8; ++t) {
    lo = l[t] < lo ? l[t] : lo;
    hi = h[t] > hi ? h[t] : hi;
  }
  nan |= _mm256_movemask_ps(vnan) != 0;
  return m;
}

// fill_row's uniform fill loop for float16 x over the first len - len % 8 units: out = mask ?
// half(lo + r * (hi - lo)) : x, r from the Philox words; returns how many units it did.
// vcvtps2ph rounds to nearest even as c10::Half does (c10 itself uses it when built with
// F16C). NaN converts differently (c10 writes 0x7E00), so callers pass finite lo and hi only.
__attribute__((target("avx2,f16c"))) inline int64_t fill_half_avx2(const uint32_t* words,
                                                                   const uint8_t* mask,
                                                                   const uint16_t* x, uint16_t* out,
                                                                   int64_t len, float lo, float hi) {
  const __m256 vlo = _mm256_set1_ps(lo), span = _mm256_set1_ps(hi - lo);
  const __m256 scale = _mm256_set1_ps(kUniformScale);
  int64_t i = 0;
  for (; i + 8 <= len; i += 8) {
    const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(words + i));
    const __m256i pos = _mm256_xor_si256(w, _mm256_srai_epi32(w, 31));  // uint_to_uniform's ~i
    const __m256 r = _mm256_mul_ps(_mm256_cvtepi32_ps(pos), scale);
    const __m256 f = _mm256_add_ps(vlo, _mm256_mul_ps(r, span));  // uniform_fill, unfused
    const __m128i h = _mm256_cvtps_ph(f, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m128i m = _mm_cmpgt_epi16(
        _mm_cvtepu8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(mask + i))),
        _mm_setzero_si128());
    const __m128i kept = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), _mm_blendv_epi8(kept, h, m));
  }
  return i;
}

}  // namespace smoot
#endif
