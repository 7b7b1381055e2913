// smoot::mask on CUDA (SPEC.md). Per row: unit scores -> order-preserving keys (formed on the
// fly, never stored in global memory) -> MSB-first radix select with 8-bit digits over
// shared-memory histograms -> the k-th smallest key T and how many units with key T to take
// (ties by index, block-wide prefix counts) -> mask, fill range and Philox fill.
//
// Two launch plans, chosen per call on the host (no host-device sync in either):
//  - "row":   one block per row; the row's keys live in shared memory (M * 4 bytes), so the
//             score is read once and x twice (range, then fill). For short rows or many rows.
//  - "split": several blocks per row, so that B = 1 with M = 150528 still fills the GPU. Each
//             digit round is one launch; a block histograms its chunk of the row in shared
//             memory and adds it to the row's global histogram with atomics. Every later block
//             replays the selection from those (tiny) histograms, so no block waits on another.
//             Then one launch decides the mask and reduces the fill range per chunk, and one
//             fills. Keys are recomputed from the score in each pass instead of being stored.
// SMOOT_CUDA_MASK_PATH=row|split forces a plan (tests exercise both); default "auto".
#include <ATen/Dispatch.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/zeros.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cub/block/block_scan.cuh>
#include <torch/library.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>

#include "common/keys.h"
#include "common/philox.h"
#include "cuda/common.cuh"

namespace smoot {
namespace cuda {
namespace {

enum Fill : int { kUniform = 0, kConstant = 1, kMean = 2 };

constexpr int kRadixBits = 8;
constexpr int kBins = 1 << kRadixBits;
constexpr uint32_t kNoBin = kBins;  // "this lane adds nothing" in hist_add
constexpr int kRounds = 32 / kRadixBits;
constexpr int kUnroll = 4;  // units per thread in flight in the score-reading loops

// Split plan: threads per block and units per block (a chunk of a row).
constexpr int kSplitThreads = 512;
constexpr int kMinChunk = 2048;
constexpr int kMaxChunk = 16384;

template <typename X, typename S>
struct MaskArgs {
  const X* x;       // (B, G, M)
  const S* score;   // (B, Sc, M)
  const void* k;    // (B,) int32 or int64
  X* out;           // (B, G, M)
  bool* mask;       // (B, M)
  int G, Sc, M;
  bool k64, use_abs;
  int fill;
  double value;
  uint64_t seed, offset;
};

// k[b], clamped into [0, M] so that a bad k can never index out of bounds. The Python
// wrapper checks the range with torch._assert_async; this assert catches direct op calls.
template <typename X, typename S>
__device__ __forceinline__ uint32_t row_k(const MaskArgs<X, S>& a, int64_t b) {
  const int64_t k = load_k(a.k, a.k64, b);
  CUDA_KERNEL_ASSERT_MSG(k >= 0 && k <= a.M, "smoot::mask: k[b] must lie in [0, M]");
  return static_cast<uint32_t>(k < 0 ? 0 : (k > a.M ? a.M : k));
}

// float_key of u[b, m] (SPEC.md step 1), from the row's score (Sc, M).
template <typename S>
__device__ __forceinline__ uint32_t unit_key(const S* __restrict__ srow, int Sc, int M, int m,
                                             bool use_abs) {
  float u = 0.0f;
  for (int s = 0; s < Sc; ++s)
    u = __fadd_rn(u, unit_term(static_cast<float>(srow[static_cast<int64_t>(s) * M + m]), use_abs));
  return float_key(u);
}

// hist[d] += 1 for each lane's digit d (kNoBin: none), one shared atomic per distinct digit
// in the warp: real saliency maps put most keys of a round in a few bins. All 32 lanes call.
__device__ __forceinline__ void hist_add(uint32_t* hist, uint32_t d) {
  const unsigned peers = __match_any_sync(kFullWarp, d);
  if (d != kNoBin && (threadIdx.x & 31) == static_cast<unsigned>(__ffs(peers) - 1))
    atomicAdd(&hist[d], static_cast<uint32_t>(__popc(peers)));
}

// The bin holding the kk-th smallest (1-based) of a 256-bin histogram: its digit, the count
// of the bins below it and its own count. Called by one whole warp; every lane gets it.
struct Pick {
  uint32_t digit, before, at;
};

__device__ Pick pick_digit(const uint32_t* hist, uint32_t kk) {
  const int lane = threadIdx.x & 31;
  constexpr int kPer = kBins / 32;
  uint32_t c[kPer];
  uint32_t local = 0;
#pragma unroll
  for (int i = 0; i < kPer; ++i) {
    c[i] = hist[lane * kPer + i];
    local += c[i];
  }
  uint32_t incl = local;
#pragma unroll
  for (int o = 1; o < 32; o <<= 1) {
    const uint32_t t = __shfl_up_sync(kFullWarp, incl, o);
    if (lane >= o) incl += t;
  }
  const uint32_t excl = incl - local;
  const bool mine = excl < kk && kk <= incl;
  Pick p{kBins - 1, 0, 0};  // unreachable for 1 <= kk <= total; keeps indices in range
  if (mine) {
    uint32_t cum = excl;
#pragma unroll
    for (int i = 0; i < kPer; ++i) {
      if (cum < kk && kk <= cum + c[i]) p = Pick{static_cast<uint32_t>(lane * kPer + i), cum, c[i]};
      cum += c[i];
    }
  }
  const unsigned who = __ballot_sync(kFullWarp, mine);
  const int src = who ? __ffs(who) - 1 : 0;
  return Pick{__shfl_sync(kFullWarp, p.digit, src), __shfl_sync(kFullWarp, p.before, src),
              __shfl_sync(kFullWarp, p.at, src)};
}

// The selection of one row: unit m is masked iff key < T, or key == T and fewer than `need`
// units with key T precede it. cnt_eq counts the units with key T, so need < cnt_eq means
// the ties are split and their index ranks are needed.
struct Sel {
  uint32_t T, need, cnt_eq;
};

__device__ __forceinline__ Sel trivial_sel(uint32_t kb) {
  // k = 0: nothing (no key is below 0 and need = 0); k = M: everything below/at 0xFFFFFFFF.
  return kb == 0 ? Sel{0u, 0u, 0u} : Sel{0xFFFFFFFFu, 0xFFFFFFFFu, 0u};
}

__device__ __forceinline__ uint32_t round_shift(int r) { return 24 - kRadixBits * r; }
// The key bits fixed by rounds 0 .. r-1.
__device__ __forceinline__ uint32_t resolved_mask(int r) { return r == 0 ? 0u : ~0u << (32 - kRadixBits * r); }

// Replays rounds 0 .. rounds-1 from a row's global histograms (split plan). Whole warp.
__device__ Sel replay(const uint32_t* row_hist, int rounds, uint32_t kb) {
  uint32_t prefix = 0, kk = kb, at = 0;
  for (int r = 0; r < rounds; ++r) {
    const Pick p = pick_digit(row_hist + r * kBins, kk);
    prefix |= p.digit << round_shift(r);
    kk -= p.before;
    at = p.at;
  }
  return Sel{prefix, kk, at};
}

// Fill range and sum over the kept units of one (b, g): NaN-propagating min and max.
struct Range {
  float lo, hi;
  double sum;
};

__device__ __forceinline__ float nan_min(float a, float b) { return (a != a || a < b) ? a : b; }
__device__ __forceinline__ float nan_max(float a, float b) { return (a != a || a > b) ? a : b; }

__device__ __forceinline__ Range empty_range() {
  return Range{__int_as_float(0x7f800000), __int_as_float(0xff800000), 0.0};
}

__device__ __forceinline__ Range combine(Range a, const Range& b) {
  return Range{nan_min(a.lo, b.lo), nan_max(a.hi, b.hi), a.sum + b.sum};
}

template <typename X>
__device__ __forceinline__ Range add_value(Range r, X v) {
  const float f = static_cast<float>(v);  // monotone: min of floats == float of min
  return Range{nan_min(r.lo, f), nan_max(r.hi, f), r.sum + static_cast<double>(v)};
}

__device__ __forceinline__ Range warp_reduce(Range r) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const Range t{__shfl_xor_sync(kFullWarp, r.lo, o), __shfl_xor_sync(kFullWarp, r.hi, o),
                  __shfl_xor_sync(kFullWarp, r.sum, o)};
    r = combine(r, t);
  }
  return r;
}

// Block-wide reduction; every thread gets the result. slots: NT / 32 entries.
template <int NT>
__device__ Range block_reduce(Range r, Range* slots, Range* result) {
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  r = warp_reduce(r);
  if (lane == 0) slots[warp] = r;
  __syncthreads();
  if (warp == 0) {
    Range v = lane < NT / 32 ? slots[lane] : empty_range();
    v = warp_reduce(v);
    if (lane == 0) *result = v;
  }
  __syncthreads();
  return *result;
}

// What a masked element of one (b, g) becomes.
template <typename X>
struct FillValue {
  bool uniform;
  float lo, hi;  // uniform: the kept range
  X fixed;       // constant or mean
};

template <typename X, typename S>
__device__ FillValue<X> fill_value(const MaskArgs<X, S>& a, const Range& r, int64_t kept) {
  FillValue<X> f{a.fill == kUniform, r.lo, r.hi, X(0)};
  if (a.fill == kConstant) f.fixed = static_cast<X>(a.value);
  if (a.fill == kMean) f.fixed = static_cast<X>(static_cast<float>(r.sum / static_cast<double>(kept)));
  return f;
}

// out[m] for m in [m_begin, m_end) of one (b, g) whose element counters start at n_row
// (SPEC.md steps 4-6): one Philox call per aligned group of 4 counters, and only for groups
// with a masked unit; kept units are copied bit for bit.
template <typename X, typename Masked>
__device__ void fill_span(const X* __restrict__ xg, X* __restrict__ og, int m_begin, int m_end,
                          const Masked& masked, uint64_t n_row, const FillValue<X>& f,
                          uint64_t seed, int tid, int nt) {
  if (m_begin >= m_end) return;
  const uint64_t c_first = (n_row + static_cast<uint64_t>(m_begin)) >> 2;
  const uint64_t c_last = (n_row + static_cast<uint64_t>(m_end - 1)) >> 2;
  for (uint64_t c = c_first + tid; c <= c_last; c += nt) {
    const int64_t m0 = static_cast<int64_t>(c * 4 - n_row);  // unit of word 0; may precede m_begin
    bool in[4], mk[4];
    X v[4];
    bool any = false;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int64_t m = m0 + j;
      in[j] = m >= m_begin && m < m_end;
      mk[j] = in[j] && masked(static_cast<int>(m));
      if (in[j]) v[j] = xg[m];
      any |= mk[j];
    }
    Philox4 w{};
    if (any && f.uniform) w = philox_block(seed, c);
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      if (!in[j]) continue;
      X o = v[j];
      if (mk[j]) o = f.uniform ? static_cast<X>(uniform_fill(f.lo, f.hi, uint_to_uniform(w.w[j]))) : f.fixed;
      og[m0 + j] = o;
    }
  }
}

struct SmemFlags {  // row plan: decisions overwrite the keys in shared memory
  const uint32_t* f;
  __device__ bool operator()(int m) const { return f[m] != 0; }
};
struct RowMask {  // split plan: decisions read back from the mask output
  const bool* f;
  __device__ bool operator()(int m) const { return f[m]; }
};

// ---------------------------------------------------------------------------------------
// Row plan: one block of NT threads per row; dynamic shared memory = RowShared + M keys.

template <int NT>
struct RowShared {
  typename cub::BlockScan<uint32_t, NT>::TempStorage scan;
  uint32_t hist[kBins];
  Range slots[NT / 32];
  Range range;
  Pick pick;
};

template <int NT>
constexpr size_t row_keys_offset() {
  return (sizeof(RowShared<NT>) + 15) / 16 * 16;
}

extern __shared__ __align__(16) unsigned char smem_raw[];

template <typename X, typename S, int NT>
__global__ void __launch_bounds__(NT) mask_row_kernel(const MaskArgs<X, S> a) {
  RowShared<NT>& sh = *reinterpret_cast<RowShared<NT>*>(smem_raw);
  uint32_t* keys = reinterpret_cast<uint32_t*>(smem_raw + row_keys_offset<NT>());
  const int tid = threadIdx.x;
  const int64_t b = blockIdx.x;
  const int M = a.M;
  const uint32_t kb = row_k(a, b);
  const bool radix = kb > 0 && kb < static_cast<uint32_t>(M);  // block-uniform

  Sel sel = trivial_sel(kb);
  if (radix) {
    const S* srow = a.score + b * a.Sc * M;
    if (tid < kBins) sh.hist[tid] = 0;
    __syncthreads();
    // Keys into shared memory, with the round-0 histogram on the way.
    for (int base = 0; base < M; base += NT * kUnroll) {
      uint32_t key[kUnroll];
#pragma unroll
      for (int j = 0; j < kUnroll; ++j) {
        const int m = base + j * NT + tid;
        key[j] = m < M ? unit_key(srow, a.Sc, M, m, a.use_abs) : 0u;
      }
#pragma unroll
      for (int j = 0; j < kUnroll; ++j) {
        const int m = base + j * NT + tid;
        if (m < M) keys[m] = key[j];
        hist_add(sh.hist, m < M ? key[j] >> round_shift(0) : kNoBin);
      }
    }
    __syncthreads();
    uint32_t prefix = 0, kk = kb;
    for (int r = 0; r < kRounds; ++r) {
      if (r > 0) {
        if (tid < kBins) sh.hist[tid] = 0;  // warp 0 has finished reading it (sync below)
        __syncthreads();
        const uint32_t fixed = resolved_mask(r), shift = round_shift(r);
        for (int base = 0; base < M; base += NT) {
          const int m = base + tid;
          uint32_t d = kNoBin;
          if (m < M) {
            const uint32_t key = keys[m];
            if ((key & fixed) == prefix) d = (key >> shift) & (kBins - 1);
          }
          hist_add(sh.hist, d);
        }
        __syncthreads();
      }
      if (tid < 32) {
        const Pick p = pick_digit(sh.hist, kk);
        if (tid == 0) sh.pick = p;
      }
      __syncthreads();
      const Pick p = sh.pick;
      prefix |= p.digit << round_shift(r);
      kk -= p.before;
      sel = Sel{prefix, kk, p.at};
    }
  }

  // Decide each unit; the decision replaces its key in shared memory.
  bool* mrow = a.mask + b * M;
  const bool split_ties = sel.need < sel.cnt_eq;
  uint32_t running = 0;  // ties (key == T) seen in earlier iterations
  for (int base = 0; base < M; base += NT) {
    const int m = base + tid;
    const bool valid = m < M;
    bool masked;
    if (!radix) {
      masked = kb != 0;
    } else {
      const uint32_t key = valid ? keys[m] : 0u;
      const bool tie = valid && key == sel.T;
      masked = valid && key < sel.T;
      if (split_ties) {
        uint32_t rank, total;
        cub::BlockScan<uint32_t, NT>(sh.scan).ExclusiveSum(tie ? 1u : 0u, rank, total);
        masked |= tie && running + rank < sel.need;
        running += total;
        __syncthreads();  // the scan storage is reused next iteration
      } else {
        masked |= tie;
      }
    }
    if (valid) {
      keys[m] = masked;
      mrow[m] = masked;
    }
  }
  __syncthreads();

  const bool none_kept = kb == static_cast<uint32_t>(M);
  const int64_t kept = none_kept ? M : M - kb;
  for (int g = 0; g < a.G; ++g) {
    const int64_t row = b * a.G + g;
    const X* xg = a.x + row * M;
    Range r = empty_range();
    if (kb > 0 && a.fill != kConstant) {  // block-uniform
      for (int m = tid; m < M; m += NT)
        if (none_kept || keys[m] == 0) r = add_value(r, xg[m]);
      r = block_reduce<NT>(r, sh.slots, &sh.range);
    }
    fill_span(xg, a.out + row * M, 0, M, SmemFlags{keys}, a.offset + static_cast<uint64_t>(row) * M,
              fill_value(a, r, kept), a.seed, tid, NT);
  }
}

// ---------------------------------------------------------------------------------------
// Split plan: grid = B * C blocks of kSplitThreads; block i handles chunk c = i % C of row
// b = i / C, units [c * chunk, min(M, (c + 1) * chunk)).

struct Split {
  int C, chunk;
  uint32_t* hist;        // (B, kRounds, kBins): per-row histogram of each round, zeroed
  uint32_t* chunk_hist;  // (B * C, kBins): each chunk's last-round histogram (tie counts)
  Range* part;           // (B * C, G): each chunk's fill range over its kept units
};

template <typename X, typename S>
__global__ void __launch_bounds__(kSplitThreads)
    split_hist_kernel(const MaskArgs<X, S> a, const Split sp, const int r) {
  __shared__ uint32_t hist[kBins];
  __shared__ Sel state;
  const int tid = threadIdx.x;
  const int64_t b = blockIdx.x / sp.C;
  const int c = blockIdx.x % sp.C;
  const int M = a.M;
  const uint32_t kb = row_k(a, b);
  if (kb == 0 || kb == static_cast<uint32_t>(M)) return;  // block-uniform: nothing to select
  const uint32_t* row_hist = sp.hist + b * kRounds * kBins;
  if (tid < kBins) hist[tid] = 0;
  if (tid < 32) {
    const Sel s = replay(row_hist, r, kb);
    if (tid == 0) state = s;
  }
  __syncthreads();
  const uint32_t prefix = state.T, fixed = resolved_mask(r), shift = round_shift(r);
  const S* srow = a.score + b * a.Sc * M;
  const int m_begin = c * sp.chunk, m_end = min(M, m_begin + sp.chunk);
  for (int base = m_begin; base < m_end; base += kSplitThreads * kUnroll) {
    uint32_t key[kUnroll];
#pragma unroll
    for (int j = 0; j < kUnroll; ++j) {
      const int m = base + j * kSplitThreads + tid;
      key[j] = m < m_end ? unit_key(srow, a.Sc, M, m, a.use_abs) : 0u;
    }
#pragma unroll
    for (int j = 0; j < kUnroll; ++j) {
      const int m = base + j * kSplitThreads + tid;
      const bool cand = m < m_end && (key[j] & fixed) == prefix;
      hist_add(hist, cand ? (key[j] >> shift) & (kBins - 1) : kNoBin);
    }
  }
  __syncthreads();
  if (tid < kBins) {
    const uint32_t v = hist[tid];
    if (v) atomicAdd(&sp.hist[(b * kRounds + r) * kBins + tid], v);
    if (r == kRounds - 1) sp.chunk_hist[static_cast<int64_t>(blockIdx.x) * kBins + tid] = v;
  }
}

struct DecideShared {
  typename cub::BlockScan<uint32_t, kSplitThreads>::TempStorage scan;
  Range slots[kSplitThreads / 32];
  Range range;
  Sel sel;
  uint32_t ties_before;  // units with key T in the earlier chunks of the row
};

constexpr size_t decide_flags_offset() { return (sizeof(DecideShared) + 15) / 16 * 16; }

template <typename X, typename S>
__global__ void __launch_bounds__(kSplitThreads) split_decide_kernel(const MaskArgs<X, S> a, const Split sp) {
  DecideShared& sh = *reinterpret_cast<DecideShared*>(smem_raw);
  uint8_t* flags = smem_raw + decide_flags_offset();  // this chunk's decisions
  const int tid = threadIdx.x;
  const int64_t b = blockIdx.x / sp.C;
  const int c = blockIdx.x % sp.C;
  const int M = a.M;
  const uint32_t kb = row_k(a, b);
  const bool radix = kb > 0 && kb < static_cast<uint32_t>(M);
  if (tid < 32) {
    Sel s = trivial_sel(kb);
    uint32_t before = 0;
    if (radix) {
      s = replay(sp.hist + b * kRounds * kBins, kRounds, kb);
      if (s.need < s.cnt_eq) {
        const uint32_t d = s.T & (kBins - 1);
        for (int cc = tid; cc < c; cc += 32)
          before += sp.chunk_hist[(b * sp.C + cc) * kBins + d];
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) before += __shfl_xor_sync(kFullWarp, before, o);
      }
    }
    if (tid == 0) {
      sh.sel = s;
      sh.ties_before = before;
    }
  }
  __syncthreads();
  const Sel sel = sh.sel;
  const bool split_ties = sel.need < sel.cnt_eq;
  uint32_t running = sh.ties_before;
  const S* srow = a.score + b * a.Sc * M;
  bool* mrow = a.mask + b * M;
  const int m_begin = c * sp.chunk, m_end = min(M, m_begin + sp.chunk);
  for (int base = m_begin; base < m_end; base += kSplitThreads * kUnroll) {
    uint32_t key[kUnroll];
#pragma unroll
    for (int j = 0; j < kUnroll; ++j) {
      const int m = base + j * kSplitThreads + tid;
      key[j] = radix && m < m_end ? unit_key(srow, a.Sc, M, m, a.use_abs) : 0u;
    }
#pragma unroll
    for (int j = 0; j < kUnroll; ++j) {
      const int m = base + j * kSplitThreads + tid;
      const bool valid = m < m_end;
      bool masked;
      if (!radix) {
        masked = kb != 0;
      } else {
        const bool tie = valid && key[j] == sel.T;
        masked = valid && key[j] < sel.T;
        if (split_ties) {
          uint32_t rank, total;
          cub::BlockScan<uint32_t, kSplitThreads>(sh.scan).ExclusiveSum(tie ? 1u : 0u, rank, total);
          masked |= tie && running + rank < sel.need;
          running += total;
          __syncthreads();
        } else {
          masked |= tie;
        }
      }
      if (valid) {
        flags[m - m_begin] = masked;
        mrow[m] = masked;
      }
    }
  }
  __syncthreads();
  if (kb == 0 || a.fill == kConstant) return;  // block-uniform: no range needed
  const bool none_kept = kb == static_cast<uint32_t>(M);
  for (int g = 0; g < a.G; ++g) {
    const X* xg = a.x + (b * a.G + g) * M;
    Range r = empty_range();
    for (int m = m_begin + tid; m < m_end; m += kSplitThreads)
      if (none_kept || !flags[m - m_begin]) r = add_value(r, xg[m]);
    r = block_reduce<kSplitThreads>(r, sh.slots, &sh.range);
    if (tid == 0) sp.part[static_cast<int64_t>(blockIdx.x) * a.G + g] = r;
  }
}

template <typename X, typename S>
__global__ void __launch_bounds__(kSplitThreads) split_fill_kernel(const MaskArgs<X, S> a, const Split sp) {
  __shared__ Range range;
  const int tid = threadIdx.x;
  const int64_t b = blockIdx.x / sp.C;
  const int c = blockIdx.x % sp.C;
  const int M = a.M;
  const uint32_t kb = row_k(a, b);
  const bool none_kept = kb == static_cast<uint32_t>(M);
  const int64_t kept = none_kept ? M : M - kb;
  const int m_begin = c * sp.chunk, m_end = min(M, m_begin + sp.chunk);
  const bool need_range = kb > 0 && a.fill != kConstant;  // block-uniform
  for (int g = 0; g < a.G; ++g) {
    const int64_t row = b * a.G + g;
    Range r = empty_range();
    if (need_range) {
      if (tid < 32) {  // the row's range from its chunks' parts, in a fixed order
        Range v = empty_range();
        for (int cc = tid; cc < sp.C; cc += 32) v = combine(v, sp.part[(b * sp.C + cc) * a.G + g]);
        v = warp_reduce(v);
        if (tid == 0) range = v;
      }
      __syncthreads();
      r = range;
      __syncthreads();  // read by all before warp 0 overwrites it for the next g
    }
    fill_span(a.x + row * M, a.out + row * M, m_begin, m_end, RowMask{a.mask + b * M},
              a.offset + static_cast<uint64_t>(row) * M, fill_value(a, r, kept), a.seed, tid,
              kSplitThreads);
  }
}

// ---------------------------------------------------------------------------------------
// Host side.

enum class Plan { kAuto, kRow, kSplit };

Plan plan_from_env() {
  const char* v = std::getenv("SMOOT_CUDA_MASK_PATH");
  if (v == nullptr || *v == '\0' || std::strcmp(v, "auto") == 0) return Plan::kAuto;
  if (std::strcmp(v, "row") == 0) return Plan::kRow;
  if (std::strcmp(v, "split") == 0) return Plan::kSplit;
  TORCH_CHECK_VALUE(false, "SMOOT_CUDA_MASK_PATH: expected 'auto', 'row' or 'split', got '", v, "'");
}

template <typename X, typename S, int NT>
void launch_row(const MaskArgs<X, S>& a, int64_t B, size_t smem, cudaStream_t stream) {
  auto kernel = mask_row_kernel<X, S, NT>;
  if (smem > 48 * 1024)  // above the default limit, opt in (a host call, capture-safe)
    C10_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                        static_cast<int>(smem)));
  kernel<<<static_cast<unsigned>(B), NT, smem, stream>>>(a);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

template <typename X, typename S>
void run_mask(const MaskArgs<X, S>& a, int64_t B, const at::Tensor& x, cudaStream_t stream) {
  const int device = x.get_device();
  const int64_t M = a.M;
  const int sms = device_attribute(cudaDevAttrMultiProcessorCount, device);
  const int64_t smem_limit = device_attribute(cudaDevAttrMaxSharedMemoryPerBlockOptin, device);
  // Short rows take a 256-thread block (several resident per SM), long rows 1024 threads.
  const bool small = M <= 2048;
  const int64_t row_smem =
      static_cast<int64_t>(small ? row_keys_offset<256>() : row_keys_offset<1024>()) + 4 * M;
  const bool row_fits = row_smem <= smem_limit;
  Plan plan = plan_from_env();
  if (plan == Plan::kAuto) {
    // One block per row is enough when the rows alone fill the GPU or are too short to split.
    // (A first guess; to be tuned on a GPU with benchmarks/mask_throughput.py.)
    plan = row_fits && (M <= 8192 || 3 * B >= sms) ? Plan::kRow : Plan::kSplit;
  }
  TORCH_CHECK_VALUE(plan != Plan::kRow || row_fits, "SMOOT_CUDA_MASK_PATH=row: M = ", M,
                    " keys need ", row_smem, " bytes of shared memory, the device allows ",
                    smem_limit);
  if (plan == Plan::kRow) {
    TORCH_CHECK_VALUE(B <= std::numeric_limits<int32_t>::max(), "smoot::mask: x: B = ", B,
                      " rows exceed the CUDA grid limit of 2**31 - 1");
    if (small)
      launch_row<X, S, 256>(a, B, static_cast<size_t>(row_smem), stream);
    else
      launch_row<X, S, 1024>(a, B, static_cast<size_t>(row_smem), stream);
    return;
  }

  // Chunks per row: enough blocks for about two per SM, within [kMinChunk, kMaxChunk] units.
  const int64_t want = std::max<int64_t>(1, (2 * sms + B - 1) / B);
  const int64_t chunk = std::clamp<int64_t>((M + want - 1) / want, kMinChunk, kMaxChunk);
  const int64_t C = (M + chunk - 1) / chunk;
  TORCH_CHECK_VALUE(B * C <= std::numeric_limits<int32_t>::max(), "smoot::mask: x: B * chunks = ",
                    B * C, " exceeds the CUDA grid limit of 2**31 - 1");
  const auto opts = x.options();
  const at::Tensor hist = at::zeros({B, kRounds, kBins}, opts.dtype(at::kInt));
  const at::Tensor chunk_hist = at::empty({B * C, kBins}, opts.dtype(at::kInt));
  static_assert(sizeof(Range) == 4 * sizeof(float), "Range is stored as 4 floats");
  const at::Tensor part = at::empty({B * C * a.G, 4}, opts.dtype(at::kFloat));
  const Split sp{static_cast<int>(C), static_cast<int>(chunk),
                 reinterpret_cast<uint32_t*>(hist.data_ptr<int32_t>()),
                 reinterpret_cast<uint32_t*>(chunk_hist.data_ptr<int32_t>()),
                 reinterpret_cast<Range*>(part.data_ptr<float>())};
  const unsigned grid = static_cast<unsigned>(B * C);
  for (int r = 0; r < kRounds; ++r) {
    split_hist_kernel<X, S><<<grid, kSplitThreads, 0, stream>>>(a, sp, r);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
  const size_t decide_smem = decide_flags_offset() + static_cast<size_t>(chunk);
  split_decide_kernel<X, S><<<grid, kSplitThreads, decide_smem, stream>>>(a, sp);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  split_fill_kernel<X, S><<<grid, kSplitThreads, 0, stream>>>(a, sp);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

constexpr const char* kOp = "smoot::mask (CUDA kernel)";

int parse_fill(c10::string_view fill) {
  if (fill == "uniform") return kUniform;
  if (fill == "constant") return kConstant;
  if (fill == "mean") return kMean;
  TORCH_CHECK_VALUE(false, kOp, ": fill: expected one of 'uniform', 'constant', 'mean', got '",
                    std::string(fill), "'");
}

std::tuple<at::Tensor, at::Tensor> mask_cuda(const at::Tensor& x_in, const at::Tensor& score_in,
                                             const at::Tensor& k_in, bool use_abs,
                                             c10::string_view fill_name, double value,
                                             int64_t seed, int64_t offset) {
  TORCH_CHECK_VALUE(x_in.is_cuda(), kOp, ": x: expected a CUDA tensor, got one on ", x_in.device());
  check_on_device(score_in, kOp, "score", x_in);
  check_on_device(k_in, kOp, "k", x_in);
  TORCH_CHECK_VALUE(x_in.dim() == 3, kOp, ": x: expected a 3-D (B, G, M) tensor, got shape ",
                    x_in.sizes());
  TORCH_CHECK_VALUE(score_in.dim() == 3, kOp, ": score: expected a 3-D (B, S, M) tensor, got shape ",
                    score_in.sizes());
  TORCH_CHECK_VALUE(k_in.dim() == 1, kOp, ": k: expected a 1-D (B,) tensor, got shape ", k_in.sizes());
  TORCH_CHECK_TYPE(at::isFloatingType(x_in.scalar_type()), kOp,
                   ": x: expected a floating-point dtype, got ", x_in.scalar_type());
  TORCH_CHECK_TYPE(at::isFloatingType(score_in.scalar_type()), kOp,
                   ": score: expected a floating-point dtype, got ", score_in.scalar_type());
  TORCH_CHECK_TYPE(k_in.scalar_type() == at::kInt || k_in.scalar_type() == at::kLong, kOp,
                   ": k: expected dtype int32 or int64, got ", k_in.scalar_type());
  const int64_t B = x_in.size(0), G = x_in.size(1), M = x_in.size(2), S = score_in.size(1);
  TORCH_CHECK_VALUE(score_in.size(0) == B && score_in.size(2) == M && S >= 1, kOp,
                    ": score: expected shape (B, S, M) = (", B, ", S >= 1, ", M, ") to match x ",
                    x_in.sizes(), ", got ", score_in.sizes());
  TORCH_CHECK_VALUE(k_in.size(0) == B, kOp, ": k: expected shape (", B, ",) to match x's B, got ",
                    k_in.sizes());
  // 32-bit unit indices with headroom for the unrolled loops; G, S fit an int likewise.
  constexpr int64_t kMaxDim = std::numeric_limits<int32_t>::max() - (1 << 16);
  TORCH_CHECK_VALUE(M <= kMaxDim && G <= kMaxDim && S <= kMaxDim, kOp,
                    ": x/score: expected G, S, M below 2**31 - 2**16, got G = ", G, ", S = ", S,
                    ", M = ", M);
  const int fill = parse_fill(fill_name);
  // The range of k is not checked here: that would need a host sync. Out-of-range k trips a
  // device-side assert (the Python wrapper checks first with torch._assert_async).

  c10::cuda::CUDAGuard guard(x_in.device());
  const at::Tensor x = x_in.contiguous();
  // The kernels read score as x's dtype or as float32. Any other score dtype is converted
  // to float32 first: exact for half types, and the very rounding of SPEC.md step 1 for fp64.
  const at::Tensor score = score_in.scalar_type() == x.scalar_type()
                               ? score_in.contiguous()
                               : score_in.to(at::kFloat).contiguous();
  const at::Tensor k = k_in.contiguous();
  at::Tensor out = at::empty_like(x);
  at::Tensor mask = at::empty({B, M}, x.options().dtype(at::kBool));
  if (B == 0 || M == 0) return {out, mask};
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();

  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "smoot_mask_cuda", [&] {
    auto go = [&](auto score_ptr) {
      using S_t = std::remove_const_t<std::remove_pointer_t<decltype(score_ptr)>>;
      const MaskArgs<scalar_t, S_t> a{x.data_ptr<scalar_t>(), score_ptr, k.data_ptr(),
                                      out.data_ptr<scalar_t>(), mask.data_ptr<bool>(),
                                      static_cast<int>(G), static_cast<int>(S), static_cast<int>(M),
                                      k.scalar_type() == at::kLong, use_abs, fill, value,
                                      static_cast<uint64_t>(seed), static_cast<uint64_t>(offset)};
      run_mask(a, B, x, stream);
    };
    if (score.scalar_type() == x.scalar_type())
      go(static_cast<const scalar_t*>(score.data_ptr<scalar_t>()));
    else
      go(static_cast<const float*>(score.data_ptr<float>()));
  });
  return {out, mask};
}

}  // namespace
}  // namespace cuda
}  // namespace smoot

TORCH_LIBRARY_IMPL(smoot, CUDA, m) { m.impl("mask", &smoot::cuda::mask_cuda); }
