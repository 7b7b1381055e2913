#pragma once
// Device code of smoot::mask on CUDA (the algorithm: see mask.cu, which also holds the host
// side: checks, launch plan, launches). No CUDA runtime, ATen or other host-only header: only
// c10's macros (CUDA_KERNEL_ASSERT_MSG) and cub. Included by mask.cu only.
#include <c10/macros/Macros.h>
#include <cub/block/block_scan.cuh>

#include <cstdint>

#include "common/fill.h"
#include "common/keys.h"
#include "common/philox.h"
#include "cuda/device.cuh"

namespace smoot {
namespace cuda {
namespace {

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

// k[b], clamped into [0, M] so that a bad k can never index out of bounds. The assert is the
// op's check of k's values: on the host it would need a sync.
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
  if (__ballot_sync(kFullWarp, d != kNoBin) == 0) return;  // common in the later rounds
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

// The selection after a digit round that picked p with kk left to take. When the picked bin
// is taken whole (p.at == kk) the select is done early: every key with the prefix so far is
// masked, i.e. key <= T with the lower bits all ones, and no later round is needed. Then
// need == cnt_eq, which is how later launches recognise it; otherwise T & resolved_mask(r + 1)
// is the prefix for round r + 1.
__device__ __forceinline__ Sel after_round(uint32_t prefix, uint32_t shift, uint32_t kk, const Pick& p) {
  return Sel{prefix | ((1u << shift) - 1u), kk, p.at};
}

__device__ __forceinline__ Sel trivial_sel(uint32_t kb) {
  // k = 0: nothing (no key is below 0 and need = 0); k = M: everything below/at 0xFFFFFFFF.
  return kb == 0 ? Sel{0u, 0u, 0u} : Sel{0xFFFFFFFFu, 0xFFFFFFFFu, 0u};
}

__device__ __forceinline__ uint32_t round_shift(int r) { return 24 - kRadixBits * r; }
// The key bits fixed by rounds 0 .. r-1.
__device__ __forceinline__ uint32_t resolved_mask(int r) { return r == 0 ? 0u : ~0u << (32 - kRadixBits * r); }

// Replays rounds 0 .. rounds-1 (fewer if done early) from a row's global histograms (split
// plan). Whole warp.
__device__ Sel replay(const uint32_t* row_hist, int rounds, uint32_t kb) {
  uint32_t prefix = 0, kk = kb;
  Sel s{0u, kb, 0u};
  for (int r = 0; r < rounds; ++r) {
    const Pick p = pick_digit(row_hist + r * kBins, kk);
    prefix |= p.digit << round_shift(r);
    kk -= p.before;
    s = after_round(prefix, round_shift(r), kk, p);
    if (p.at == kk) break;
  }
  return s;
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
      sel = after_round(prefix, round_shift(r), kk, p);
      if (p.at == kk) break;  // block-uniform
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
  if (r > 0 && state.need == state.cnt_eq) return;  // block-uniform: selected in fewer rounds
  const uint32_t fixed = resolved_mask(r), prefix = state.T & fixed, shift = round_shift(r);
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

}  // namespace
}  // namespace cuda
}  // namespace smoot
