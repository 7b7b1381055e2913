#pragma once
// smoot::mask on the CPU, stage 1 (SPEC.md steps 1-2): one row's unit scores -> order-preserving
// keys -> radix select of the k-th smallest (key, index) pair -> the row's mask.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <utility>
#include <vector>

#include "common/keys.h"

namespace smoot {
namespace cpu {

// Radix digits of at most this many bits; fewer for few candidates (a shorter histogram).
constexpr int kMaxDigitBits = 11;
// Below this many candidates a selection on packed (key, index) words beats another pass.
constexpr int64_t kSmallSelect = 64;

// Per-thread scratch of the select, reused across the rows of one parallel_for range.
struct SelectScratch {
  std::vector<float> u;          // unit scores while summing over S
  std::vector<uint32_t> keys;    // float_key(u)
  std::vector<uint32_t> ckey;    // candidate keys, in index order
  std::vector<uint32_t> cidx;    // candidate indices
  std::vector<uint64_t> packed;  // (key << 32 | index) for the final small selection
  uint32_t hist[2][1 << kMaxDigitBits];  // two interleaved histograms: half the store chains

  explicit SelectScratch(int64_t M) : u(M), keys(M), ckey(M), cidx(M), packed(kSmallSelect) {}
};

inline uint64_t pack(uint32_t key, uint32_t idx) { return (static_cast<uint64_t>(key) << 32) | idx; }

// The k-th smallest (key, index) pair in lexicographic order, as key << 32 | index, for
// 1 <= k <= M, given lo <= every key <= hi: unit m is masked iff (key[m], m) <= that pair,
// which is exactly the first k of a stable sort by key. Radix select with digits taken
// relative to the candidates' key range, so that the first histogram spreads the keys
// over all its bins whatever their magnitude; each pass narrows the range by 2^11 or more.
inline uint64_t select_kth(const uint32_t* keys, int64_t M, int64_t k, uint32_t lo,
                           uint32_t hi, SelectScratch& s) {
  uint32_t* h0 = s.hist[0];
  uint32_t* h1 = s.hist[1];
  uint32_t* ck = s.ckey.data();
  uint32_t* ci = s.cidx.data();
  const uint32_t* src_key = keys;
  const uint32_t* src_idx = nullptr;  // the first pass runs over all units: index i
  int64_t n = M;
  for (;;) {
    if (lo == hi) return pack(lo, src_idx ? src_idx[k - 1] : static_cast<uint32_t>(k - 1));
    if (n <= kSmallSelect) {
      uint64_t* pk = s.packed.data();
      for (int64_t i = 0; i < n; ++i)
        pk[i] = pack(src_key[i], src_idx ? src_idx[i] : static_cast<uint32_t>(i));
      std::nth_element(pk, pk + (k - 1), pk + n);
      return pk[k - 1];
    }
    const int bits = std::clamp(static_cast<int>(std::bit_width(static_cast<uint64_t>(n))) - 1,
                                4, kMaxDigitBits);
    const int width = std::bit_width(hi - lo);
    const int shift = width > bits ? width - bits : 0;
    const uint32_t bins = ((hi - lo) >> shift) + 1;
    std::fill(h0, h0 + bins, 0u);
    std::fill(h1, h1 + bins, 0u);
    for (int64_t i = 0; i + 1 < n; i += 2) {
      ++h0[(src_key[i] - lo) >> shift];
      ++h1[(src_key[i + 1] - lo) >> shift];
    }
    if (n & 1) ++h0[(src_key[n - 1] - lo) >> shift];
    // The bin d holding the k-th key: skip whole groups of bins by their (vectorised) sum
    // first, as the one-bin walk is a serial chain over up to 2^11 bins.
    constexpr uint32_t kGroup = 32;
    uint32_t d = 0;
    int64_t below = 0;
    for (; d + kGroup <= bins; d += kGroup) {
      uint32_t sum = 0;
#pragma omp simd reduction(+ : sum)
      for (uint32_t t = 0; t < kGroup; ++t) sum += h0[d + t] + h1[d + t];
      if (below + sum >= k) break;
      below += sum;
    }
    while (below + h0[d] + h1[d] < k) below += h0[d] + h1[d], ++d;
    k -= below;
    const int64_t count = h0[d] + h1[d];
    // Keep the candidates with digit d, in index order (in place after the first pass). take()
    // is branch-free: it always writes at j (<= i, and < M), and advances j for a candidate.
    int64_t j = 0;
    auto in_bin = [=](uint32_t key) { return ((key - lo) >> shift) == d; };
    auto take = [&](int64_t i) {
      const uint32_t key = src_key[i];
      ck[j] = key;
      ci[j] = src_idx ? src_idx[i] : static_cast<uint32_t>(i);
      j += in_bin(key);
    };
    int64_t i0 = 0;
    if (count * 16 < n) {  // few: skip groups of 16 keys without one (a vectorised test)
      for (; i0 + 16 <= n; i0 += 16) {
        int any = 0;
#pragma omp simd reduction(| : any)
        for (int t = 0; t < 16; ++t) any |= in_bin(src_key[i0 + t]);
        if (any)
          for (int t = 0; t < 16; ++t) take(i0 + t);
      }
    }
    for (; i0 < n; ++i0) take(i0);
    src_key = ck;
    src_idx = ci;
    n = count;
    lo += d << shift;
    // The bin's last key, in 64 bits: near the top of the key space lo + 2^shift overflows.
    hi = static_cast<uint32_t>(
        std::min<uint64_t>(hi, static_cast<uint64_t>(lo) + ((uint64_t{1} << shift) - 1)));
  }
}

// keys[m] = float_key(unit(m)); returns bounds lo <= every key <= hi, from the float minimum
// and maximum (one SSE2 instruction each, unlike an unsigned integer min/max).
template <typename Unit>
std::pair<uint32_t, uint32_t> keys_of(Unit unit, int64_t M, uint32_t* keys) {
  float umin = INFINITY, umax = -INFINITY;  // NaN compares false: skipped
  int nan = 0;
#pragma omp simd reduction(min : umin) reduction(max : umax) reduction(| : nan)
  for (int64_t m = 0; m < M; ++m) {
    const float v = unit(m);
    keys[m] = float_key(v);
    umin = v < umin ? v : umin;
    umax = v > umax ? v : umax;
    nan |= v != v;
  }
  return {float_key(umin), nan ? 0xFFFFFFFFu : float_key(umax)};
}

// u[m] of SPEC.md step 1 as keys, summing f(score) over S left to right in float32;
// returns bounds on the keys. `abs` is a template argument so that the loops vectorise.
template <bool kAbs, typename score_t>
std::pair<uint32_t, uint32_t> unit_keys(const score_t* score, int64_t S, int64_t M,
                                        SelectScratch& s) {
  const score_t* last = score + (S - 1) * M;
  auto term = [](score_t v) { return unit_term(static_cast<float>(v), kAbs); };
  if (S == 1) return keys_of([=](int64_t m) { return term(last[m]); }, M, s.keys.data());
  float* u = s.u.data();
  for (int64_t m = 0; m < M; ++m) u[m] = term(score[m]);
  for (int64_t c = 1; c < S - 1; ++c) {
    const score_t* row = score + c * M;
    for (int64_t m = 0; m < M; ++m) u[m] = u[m] + term(row[m]);
  }
  return keys_of([=](int64_t m) { return u[m] + term(last[m]); }, M, s.keys.data());
}

// SPEC.md steps 1-2 for one row: mask[m] = (key[m], m) <= the k-th smallest pair.
template <typename score_t>
void select_row(int64_t k, const score_t* score, int64_t S, int64_t M, bool use_abs, uint8_t* mrow,
                SelectScratch& s) {
  if (k == 0) {
    std::fill(mrow, mrow + M, false);
  } else if (k == M) {
    std::fill(mrow, mrow + M, true);
  } else {
    const auto [lo, hi] = use_abs ? unit_keys<true>(score, S, M, s) : unit_keys<false>(score, S, M, s);
    const uint64_t sel = select_kth(s.keys.data(), M, k, lo, hi, s);
    const uint32_t T = static_cast<uint32_t>(sel >> 32);
    const uint32_t last = static_cast<uint32_t>(sel);
    const uint32_t* keys = s.keys.data();
    for (int64_t m = 0; m < M; ++m) {
      const uint32_t key = keys[m];
      mrow[m] = (key < T) | ((key == T) & (static_cast<uint32_t>(m) <= last));
    }
  }
}

}  // namespace cpu
}  // namespace smoot
