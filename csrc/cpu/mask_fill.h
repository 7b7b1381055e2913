#pragma once
// smoot::mask on the CPU, stage 2 (SPEC.md steps 3-6): given a row's mask, the fill range or
// mean of each value channel, the Philox words and the filled output row.
#include <c10/util/Half.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <utility>
#include <vector>

#include "common/fill.h"
#include "common/philox.h"
#include "cpu/avx2.h"

namespace smoot {
namespace cpu {

// Elements per Philox chunk: the words of one chunk stay in L1.
constexpr int64_t kChunk = 1024;
// Philox counters touching one chunk (kChunk / 4 + 2), rounded up to whole AVX2 groups of 8.
constexpr int64_t kChunkBlocks = (kChunk / 4 + 2 + 7) / 8 * 8;

// Per-thread scratch of the fill: the Philox words of one chunk.
struct FillScratch {
  std::vector<uint32_t> words;

  FillScratch() : words(4 * kChunkBlocks) {}
};

// What fill_row needs of the op's arguments.
struct FillArgs {
  int64_t G, M;
  Fill fill;
  double value;
  uint64_t seed, offset;
};

// Philox words for elements n0 .. n0 + count - 1 (SPEC.md step 6), count <= kChunk: returns
// a pointer p with p[i] the word of element n0 + i. One Philox4x32-10 per counter
// c = n / 4, all counters of the chunk at once: eight lanes per AVX2 instruction where the
// CPU has it, else the state lives in SoA arrays and each philox_round runs over all lanes,
// which the compiler vectorises for SSE2 (a loop of philox_block calls runs one at a time).
template <bool kAvx2>
const uint32_t* philox_words(uint64_t seed, uint64_t n0, int64_t count, FillScratch& s) {
  const uint64_t c0 = n0 >> 2;
  const int64_t nblocks = static_cast<int64_t>(((n0 + count + 3) >> 2) - c0);
  uint32_t x0[kChunkBlocks], x1[kChunkBlocks], x2[kChunkBlocks], x3[kChunkBlocks];
  // Counters up to whole groups of 8 (<= kChunkBlocks): the AVX2 loop reads its last group whole.
  const int64_t ncounters = (nblocks + 7) / 8 * 8;
  for (int64_t i = 0; i < ncounters; ++i) {
    const uint64_t c = c0 + static_cast<uint64_t>(i);
    x0[i] = static_cast<uint32_t>(c);
    x1[i] = static_cast<uint32_t>(c >> 32);
  }
  uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
  uint32_t* words = s.words.data();
#ifdef SMOOT_HAVE_AVX2_PATH
  if constexpr (kAvx2) {
    philox_blocks_avx2(x0, x1, nblocks, k0, k1, words);
    return words + (n0 & 3);
  }
#endif
  std::fill(x2, x2 + nblocks, 0u);
  std::fill(x3, x3 + nblocks, 0u);
  for (int r = 0; r < 10; ++r) {  // the rounds of philox4x32_10, lane by lane
    for (int64_t i = 0; i < nblocks; ++i) philox_round(x0[i], x1[i], x2[i], x3[i], k0, k1);
    k0 += kPhiloxW0;
    k1 += kPhiloxW1;
  }
  for (int64_t i = 0; i < nblocks; ++i) {
    words[4 * i + 0] = x0[i];
    words[4 * i + 1] = x1[i];
    words[4 * i + 2] = x2[i];
    words[4 * i + 3] = x3[i];
  }
  return words + (n0 & 3);
}

template <typename scalar_t>
using acc_type = std::conditional_t<std::is_same_v<scalar_t, double>, double, float>;

// masked ? fill : kept, on the bits: kept values are copied exactly, and the select is
// branch-free and unconditional in both loads, so the loops around it vectorise.
template <typename scalar_t>
scalar_t select_bits(uint8_t masked, scalar_t fill, scalar_t kept) {
  using bits_t = std::conditional_t<sizeof(scalar_t) == 2, uint16_t,
                                    std::conditional_t<sizeof(scalar_t) == 4, uint32_t, uint64_t>>;
  const bits_t f = std::bit_cast<bits_t>(fill), x = std::bit_cast<bits_t>(kept);
  const bits_t sel = static_cast<bits_t>(-static_cast<bits_t>(masked));
  return std::bit_cast<scalar_t>(static_cast<bits_t>(x ^ ((x ^ f) & sel)));
}

// SPEC.md step 3: min and max of x over the kept units (all when `all`), NaN if any of
// them is NaN, as torch.amin/amax. min and max are exact, so a reordered (SIMD) reduction
// gives the same result up to the sign of a zero.
template <bool kAvx2, typename acc_t, typename scalar_t>
std::pair<acc_t, acc_t> fill_range(const scalar_t* x, const uint8_t* mrow, int64_t M, bool all) {
  constexpr acc_t inf = std::numeric_limits<acc_t>::infinity();
  const uint8_t keep_all = all;
  acc_t lo = inf, hi = -inf;
  int nan = 0;
  int64_t m = 0;  // units done by the AVX2 loop
#ifdef SMOOT_HAVE_AVX2_PATH
  if constexpr (kAvx2 && std::is_same_v<scalar_t, float> && std::is_same_v<acc_t, float>)
    m = kept_range_avx2(x, mrow, M, all, lo, hi, nan);
#endif
#pragma omp simd reduction(min : lo) reduction(max : hi) reduction(| : nan)
  for (int64_t i = m; i < M; ++i) {
    const acc_t v = static_cast<acc_t>(x[i]);
    const bool use = (keep_all | (mrow[i] ^ 1)) != 0;
    const acc_t vl = use ? v : inf, vh = use ? v : -inf;
    lo = vl < lo ? vl : lo;
    hi = vh > hi ? vh : hi;
    nan |= vl != vl;
  }
  if (nan) lo = hi = std::numeric_limits<acc_t>::quiet_NaN();
  return {lo, hi};
}

// SPEC.md step 4 "mean": as the reference, a float64 mean over the kept units (all when
// `all`), rounded to float32, then to x's dtype.
template <typename scalar_t>
scalar_t kept_mean(const scalar_t* x, const uint8_t* mrow, int64_t M, bool all) {
  const uint8_t keep_all = all;
  double sum = 0;
  int64_t count = 0;
#pragma omp simd reduction(+ : sum, count)
  for (int64_t m = 0; m < M; ++m) {
    const bool use = (keep_all | (mrow[m] ^ 1)) != 0;
    sum += use ? static_cast<double>(x[m]) : 0.0;
    count += use;
  }
  return static_cast<scalar_t>(static_cast<float>(sum / static_cast<double>(count)));
}

// SPEC.md steps 3-6 for one row, given its mask; xf: x as float32 when x is float16 (else null).
template <bool kAvx2, typename scalar_t>
void fill_row(int64_t b, int64_t k, const scalar_t* x, const float* xf, const uint8_t* mrow,
              scalar_t* out, const FillArgs& a, FillScratch& s) {
  using acc_t = acc_type<scalar_t>;
  const int64_t G = a.G, M = a.M;
  const bool all_masked = k == M;
  for (int64_t g = 0; g < G; ++g) {
    const scalar_t* xr = x + g * M;
    scalar_t* orow = out + g * M;
    if (k == 0) {
      std::copy(xr, xr + M, orow);
      continue;
    }
    // 4-5: fill the masked units, copy the kept ones bit for bit.
    if (a.fill == Fill::kUniform) {
      const auto [lo, hi] = xf ? fill_range<kAvx2, acc_t>(xf + g * M, mrow, M, all_masked)
                               : fill_range<kAvx2, acc_t>(xr, mrow, M, all_masked);
      const float flo = static_cast<float>(lo), fhi = static_cast<float>(hi);
      const uint64_t n_row = a.offset + static_cast<uint64_t>((b * G + g) * M);
      for (int64_t m0 = 0; m0 < M; m0 += kChunk) {
        const int64_t len = std::min(kChunk, M - m0);
        const uint32_t* words = philox_words<kAvx2>(a.seed, n_row + static_cast<uint64_t>(m0), len, s);
        const uint8_t* mc = mrow + m0;
        const scalar_t* xc = xr + m0;
        scalar_t* oc = orow + m0;
        int64_t i = 0;  // units done by the AVX2 loop
#ifdef SMOOT_HAVE_AVX2_PATH
        if constexpr (kAvx2 && std::is_same_v<scalar_t, c10::Half>) {
          if (std::isfinite(flo) && std::isfinite(fhi))
            i = fill_half_avx2(words, mc, reinterpret_cast<const uint16_t*>(xc),
                               reinterpret_cast<uint16_t*>(oc), len, flo, fhi);
        }
#endif
        for (; i < len; ++i)
          oc[i] = select_bits(mc[i], static_cast<scalar_t>(uniform_fill(flo, fhi, uint_to_uniform(words[i]))), xc[i]);
      }
      continue;
    }
    const scalar_t fv = a.fill == Fill::kConstant ? static_cast<scalar_t>(a.value)
                                                  : kept_mean(xr, mrow, M, all_masked);
    for (int64_t m = 0; m < M; ++m) orow[m] = select_bits(mrow[m], fv, xr[m]);
  }
}

}  // namespace cpu
}  // namespace smoot
