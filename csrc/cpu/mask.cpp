// smoot::mask on the CPU (SPEC.md): per row, unit scores -> order-preserving keys -> radix
// select of the k-th smallest (key, index) pair -> mask and fill. Rows are independent and
// each row's work is fixed, so the output does not depend on the thread count.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <torch/library.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdlib>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "common/keys.h"
#include "common/philox.h"
#include "cpu/avx2.h"
#include "cpu/isa.h"

namespace smoot {
namespace {

enum class Fill { kUniform, kConstant, kMean };

Fill parse_fill(const std::string& fill) {
  if (fill == "uniform") return Fill::kUniform;
  if (fill == "constant") return Fill::kConstant;
  if (fill == "mean") return Fill::kMean;
  TORCH_CHECK_VALUE(false, "smoot::mask: fill: expected one of 'uniform', 'constant', 'mean', "
                    "got '", fill, "'");
}

// The instruction set of the row loops: SMOOT_CPU_ISA=baseline|avx2 forces one (the tests
// run both); unset or "auto" takes AVX2 where the CPU has it.
bool use_avx2() {
  const char* v = std::getenv("SMOOT_CPU_ISA");
  const std::string isa = v ? v : "";
#ifdef SMOOT_HAVE_AVX2_PATH
  const bool has = cpu_has_avx2();
#else
  const bool has = false;
#endif
  if (isa.empty() || isa == "auto") return has;
  if (isa == "baseline") return false;
  TORCH_CHECK_VALUE(isa == "avx2", "SMOOT_CPU_ISA: expected 'auto', 'baseline' or 'avx2', got '",
                    isa, "'");
  TORCH_CHECK_VALUE(has, "SMOOT_CPU_ISA: 'avx2' was asked for, but this CPU or build has no AVX2");
  return true;
}

// Radix digits of at most this many bits; fewer for few candidates (a shorter histogram).
constexpr int kMaxDigitBits = 11;
// Below this many candidates a selection on packed (key, index) words beats another pass.
constexpr int64_t kSmallSelect = 64;
// Elements per Philox chunk: the words of one chunk stay in L1.
constexpr int64_t kChunk = 1024;
// Philox counters touching one chunk (kChunk / 4 + 2), rounded up to whole AVX2 groups of 8.
constexpr int64_t kChunkBlocks = (kChunk / 4 + 2 + 7) / 8 * 8;

// Per-thread scratch, reused across the rows of one parallel_for range.
struct Scratch {
  std::vector<float> u;          // unit scores while summing over S
  std::vector<uint32_t> keys;    // float_key(u)
  std::vector<uint32_t> ckey;    // candidate keys, in index order
  std::vector<uint32_t> cidx;    // candidate indices
  std::vector<uint64_t> packed;  // (key << 32 | index) for the final small selection
  std::vector<uint32_t> words;   // Philox words of one chunk
  uint32_t hist[2][1 << kMaxDigitBits];  // two interleaved histograms: half the store chains

  explicit Scratch(int64_t M)
      : u(M), keys(M), ckey(M), cidx(M), packed(kSmallSelect), words(4 * kChunkBlocks) {}
};

inline uint64_t pack(uint32_t key, uint32_t idx) { return (static_cast<uint64_t>(key) << 32) | idx; }

// The k-th smallest (key, index) pair in lexicographic order, as key << 32 | index, for
// 1 <= k <= M, given lo <= every key <= hi: unit m is masked iff (key[m], m) <= that pair,
// which is exactly the first k of a stable sort by key. Radix select with digits taken
// relative to the candidates' key range, so that the first histogram spreads the keys
// over all its bins whatever their magnitude; each pass narrows the range by 2^11 or more.
uint64_t select_kth(const uint32_t* keys, int64_t M, int64_t k, uint32_t lo, uint32_t hi,
                    Scratch& s) {
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
std::pair<uint32_t, uint32_t> unit_keys(const score_t* score, int64_t S, int64_t M, Scratch& s) {
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

// Philox words for elements n0 .. n0 + count - 1 (SPEC.md step 6), count <= kChunk: returns
// a pointer p with p[i] the word of element n0 + i. One Philox4x32-10 per counter
// c = n / 4, all counters of the chunk at once: eight lanes per AVX2 instruction where the
// CPU has it, else the state lives in SoA arrays and each philox_round runs over all lanes,
// which the compiler vectorises for SSE2 (1.7x faster than a loop of philox_block calls).
template <bool kAvx2>
const uint32_t* philox_words(uint64_t seed, uint64_t n0, int64_t count, Scratch& s) {
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

struct RowArgs {
  int64_t G, S, M;
  bool use_abs;
  Fill fill;
  double value;
  uint64_t seed, offset;
};

// SPEC.md steps 1-2 for one row: mask[m] = (key[m], m) <= the k-th smallest pair.
template <typename score_t>
void select_row(int64_t k, const score_t* score, uint8_t* mrow, const RowArgs& a, Scratch& s) {
  const int64_t M = a.M;
  if (k == 0) {
    std::fill(mrow, mrow + M, false);
  } else if (k == M) {
    std::fill(mrow, mrow + M, true);
  } else {
    const auto [lo, hi] = a.use_abs ? unit_keys<true>(score, a.S, M, s)
                                    : unit_keys<false>(score, a.S, M, s);
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
              scalar_t* out, const RowArgs& a, Scratch& s) {
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

// Hardware prefetchers learn a stream only after some misses, and each row is a few short
// streams: when the inputs are not in cache (the op runs between other work) a row would
// wait on DRAM without this.
template <typename T>
void prefetch_l2(const T* p, int64_t n) {
  const char* c = reinterpret_cast<const char*>(p);
  const int64_t bytes = std::min<int64_t>(n * static_cast<int64_t>(sizeof(T)), 64 * 1024);
  for (int64_t off = 0; off < bytes; off += 64) __builtin_prefetch(c + off, 0, 2);
}

// Rows begin .. end - 1 of the batch, with their scratch.
template <bool kAvx2, typename x_t, typename score_t>
void mask_rows(int64_t begin, int64_t end, const int64_t* k, const score_t* score, const x_t* x,
               const float* xf, uint8_t* mask, x_t* out, const RowArgs& a) {
  Scratch s(a.M);
  for (int64_t b = begin; b < end; ++b) {
    if (b + 1 < end) {  // the next row's inputs, into L2 while this row computes
      prefetch_l2(score + (b + 1) * a.S * a.M, a.S * a.M);
      prefetch_l2(x + (b + 1) * a.G * a.M, a.G * a.M);
    }
    select_row(k[b], score + b * a.S * a.M, mask + b * a.M, a, s);
    fill_row<kAvx2>(b, k[b], x + b * a.G * a.M, xf ? xf + b * a.G * a.M : nullptr, mask + b * a.M,
             out + b * a.G * a.M, a, s);
  }
}

#ifdef SMOOT_HAVE_AVX2_PATH
// The same, with everything it calls inlined and compiled for AVX2: 8-lane key, select, range
// and fill loops. Integer ops and unfused float ops (no FMA in this target) keep it exact.
template <typename x_t, typename score_t>
[[gnu::target("avx2,f16c"), gnu::flatten]] void mask_rows_avx2(int64_t begin, int64_t end,
                                                          const int64_t* k, const score_t* score,
                                                          const x_t* x, const float* xf,
                                                          uint8_t* mask, x_t* out,
                                                          const RowArgs& a) {
  mask_rows<true>(begin, end, k, score, x, xf, mask, out, a);
}
#endif

void check_same_device(const at::Tensor& t, const char* name, const at::Tensor& x) {
  TORCH_CHECK_VALUE(t.device() == x.device(), "smoot::mask: ", name,
                    ": expected a tensor on x's device ", x.device(), ", got one on ",
                    t.device());
}

std::tuple<at::Tensor, at::Tensor> mask_cpu(const at::Tensor& x_in, const at::Tensor& score_in,
                                            const at::Tensor& k_in, bool use_abs,
                                            c10::string_view fill_name, double value,
                                            int64_t seed, int64_t offset) {
  TORCH_CHECK_VALUE(x_in.device().is_cpu(), "smoot::mask (CPU kernel): x: expected a CPU tensor, "
                    "got one on ", x_in.device());
  check_same_device(score_in, "score", x_in);
  check_same_device(k_in, "k", x_in);
  TORCH_CHECK_VALUE(x_in.dim() == 3, "smoot::mask: x: expected a 3-D (B, G, M) tensor, got shape ",
                    x_in.sizes());
  TORCH_CHECK_VALUE(score_in.dim() == 3,
                    "smoot::mask: score: expected a 3-D (B, S, M) tensor, got shape ",
                    score_in.sizes());
  TORCH_CHECK_VALUE(k_in.dim() == 1, "smoot::mask: k: expected a 1-D (B,) tensor, got shape ",
                    k_in.sizes());
  TORCH_CHECK_TYPE(at::isFloatingType(x_in.scalar_type()),
                   "smoot::mask: x: expected a floating-point dtype, got ", x_in.scalar_type());
  TORCH_CHECK_TYPE(at::isFloatingType(score_in.scalar_type()),
                   "smoot::mask: score: expected a floating-point dtype, got ",
                   score_in.scalar_type());
  TORCH_CHECK_TYPE(k_in.scalar_type() == at::kInt || k_in.scalar_type() == at::kLong,
                   "smoot::mask: k: expected dtype int32 or int64, got ", k_in.scalar_type());
  const int64_t B = x_in.size(0), G = x_in.size(1), M = x_in.size(2), S = score_in.size(1);
  TORCH_CHECK_VALUE(score_in.size(0) == B && score_in.size(2) == M && S >= 1,
                    "smoot::mask: score: expected shape (B, S, M) = (", B, ", S >= 1, ", M,
                    ") to match x ", x_in.sizes(), ", got ", score_in.sizes());
  TORCH_CHECK_VALUE(k_in.size(0) == B, "smoot::mask: k: expected shape (", B,
                    ",) to match x's B, got ", k_in.sizes());
  TORCH_CHECK_VALUE(M <= std::numeric_limits<uint32_t>::max(),
                    "smoot::mask: x: expected M < 2**32 units (32-bit indices), got ", M);
  const Fill fill = parse_fill(std::string(fill_name));

  const at::Tensor k = k_in.to(at::kLong).contiguous();
  const int64_t* kp = k.data_ptr<int64_t>();
  for (int64_t b = 0; b < B; ++b) {
    TORCH_CHECK_VALUE(kp[b] >= 0 && kp[b] <= M, "smoot::mask: k: expected 0 <= k[b] <= M = ", M,
                      ", got k[", b, "] = ", kp[b]);
  }

  const at::Tensor x = x_in.contiguous();
  // float16 -> float32 is exact, and ATen's conversion vectorises where c10::Half's scalar
  // one in our loops does not (5x slower): score is read as float32, and so is x for the
  // uniform fill's range.
  const at::Tensor score = score_in.scalar_type() == at::kHalf ? score_in.to(at::kFloat).contiguous()
                                                                : score_in.contiguous();
  const bool x_half = x.scalar_type() == at::kHalf && fill == Fill::kUniform;
  const at::Tensor xf = x_half ? x.to(at::kFloat) : at::Tensor();
  at::Tensor out = at::empty_like(x);
  at::Tensor mask = at::empty({B, M}, x.options().dtype(at::kBool));
  if (B == 0 || M == 0) return {out, mask};

  [[maybe_unused]] const bool avx2 = use_avx2();
  const RowArgs args{G, S, M, use_abs, fill, value, static_cast<uint64_t>(seed),
                     static_cast<uint64_t>(offset)};
  // Enough rows per task to amortise the scratch allocation.
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(1, M * (G + S)));
  uint8_t* mp = reinterpret_cast<uint8_t*>(mask.data_ptr<bool>());  // bool bytes, 0 or 1
  const float* xfp = x_half ? xf.data_ptr<float>() : nullptr;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "smoot::mask", [&] {
    using x_t = scalar_t;
    const x_t* xp = x.data_ptr<x_t>();
    x_t* op = out.data_ptr<x_t>();
    AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, score.scalar_type(), "smoot::mask", [&] {
      const scalar_t* sp = score.data_ptr<scalar_t>();
      at::parallel_for(0, B, grain, [&](int64_t begin, int64_t end) {
#ifdef SMOOT_HAVE_AVX2_PATH
        if (avx2) return mask_rows_avx2(begin, end, kp, sp, xp, xfp, mp, op, args);
#endif
        mask_rows<false>(begin, end, kp, sp, xp, xfp, mp, op, args);
      });
    });
  });
  return {out, mask};
}

}  // namespace

const char* cpu_isa() { return use_avx2() ? "avx2" : "baseline"; }

}  // namespace smoot

TORCH_LIBRARY_IMPL(smoot, CPU, m) { m.impl("mask", &smoot::mask_cpu); }
