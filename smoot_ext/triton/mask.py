"""``smoot::mask_triton``: docs/SPEC.md ``smoot::mask`` as two Triton kernels.

1. ``_select_kernel``, one program per row: forms the unit scores u on the fly, ranks them by
   radix select (``tl.histogram`` over 8-bit digits of order-preserving 32-bit keys) and
   writes the mask (ties to the lower index via ``tl.cumsum``).
2. ``_stats_kernel``, several programs per (row, channel): partial fill statistics (min/max
   or sum over the kept units).
3. ``_fill_kernel``, many programs per row: reduces the partial statistics, copies kept values
   and writes the fills. Each program covers whole groups of four element counters n, so one
   Philox call serves four consecutive elements (SPEC step 6) and the result does not depend
   on the tiling.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch.library import triton_op, wrap_triton
from triton.runtime.interpreter import InterpretedFunction

from .. import _autograd, checks
from ._schema import schema_of

FILL_UNIFORM, FILL_CONSTANT, FILL_MEAN = tl.constexpr(0), tl.constexpr(1), tl.constexpr(2)
FILL_CODES = {"uniform": FILL_UNIFORM.value, "constant": FILL_CONSTANT.value, "mean": FILL_MEAN.value}
INF, NAN = tl.constexpr(float("inf")), tl.constexpr(float("nan"))
DIGIT_BITS = 8  # 4 radix passes of 256 bins
HIST_COPIES = 8  # copies of the first pass's histogram (see _select_kernel)


@triton.jit
def _float_key(u):
    """csrc/common/keys.h float_key: unsigned order = ascending, -0.0 == +0.0, NaN last."""
    bits = u.to(tl.uint32, bitcast=True)
    key = tl.where((bits >> 31) != 0, bits ^ 0xFFFFFFFF, bits | 0x80000000)
    key = tl.where(u == 0.0, 0x80000000, key)
    return tl.where(u != u, 0xFFFFFFFF, key)


@triton.jit
def _unit_key(row_score, offs, inb, S, M, ABS: tl.constexpr):
    """The key of u[m] = f(score[0, m]) + ... + f(score[S-1, m]), summed left to right in fp32."""
    u = tl.load(row_score + offs, mask=inb, other=0.0).to(tl.float32)
    if ABS:
        u = tl.abs(u)
    for s in range(1, S):
        v = tl.load(row_score + s * M + offs, mask=inb, other=0.0).to(tl.float32)
        if ABS:
            v = tl.abs(v)
        u += v
    return _float_key(u)


@triton.jit
def _pick_digit(hist, rank, prefix, BITS: tl.constexpr):
    """The bin of the histogram that holds the key of 0-based `rank`: append its digit to
    `prefix` and make `rank` relative to that bin."""
    bins = tl.arange(0, hist.shape[0])
    d = tl.sum((tl.cumsum(hist, 0) <= rank).to(tl.int32), 0)
    rank -= tl.sum(tl.where(bins < d, hist, 0), 0)
    return rank, (prefix << BITS) | d.to(tl.uint32)


@triton.jit
def _select_kernel(score_ptr, k_ptr, keys_ptr, mask_ptr, S, M, ABS: tl.constexpr,
                   BLOCK: tl.constexpr, BITS: tl.constexpr, SPREAD: tl.constexpr):
    b = tl.program_id(0).to(tl.int64)
    NB: tl.constexpr = 1 << BITS
    idx = tl.arange(0, BLOCK)
    row_score = score_ptr + b * S * M
    row_keys = keys_ptr + b * M
    row_mask = mask_ptr + b * M
    k = tl.load(k_ptr + b).to(tl.int32)

    # Radix select, most significant digit first: find T, the k-th smallest key, and `rank`,
    # the number of units with key T that come before it. `prefix` holds the digits of T found
    # so far. For k = 0, rank stays -1, every digit is 0 and T = 0, which no key takes.
    rank = k - 1
    prefix = tl.zeros((), dtype=tl.uint32)
    # First digit, while forming the keys. It (sign, top of the exponent) puts most keys in a
    # few bins: each lane counts into one of SPREAD copies of the histogram (lane = index % 32
    # in Triton's layout), so the shared atomics of a warp mostly hit different addresses.
    hist = tl.zeros((NB * SPREAD,), dtype=tl.int32)
    for start in range(0, M, BLOCK):
        offs = start + idx
        inb = offs < M
        key = _unit_key(row_score, offs, inb, S, M, ABS)
        tl.store(row_keys + offs, key.to(tl.int32, bitcast=True), mask=inb)
        digit = (key >> (32 - BITS)).to(tl.int32)
        hist += tl.histogram(digit * SPREAD + idx % SPREAD, NB * SPREAD, mask=inb)
    tl.debug_barrier()  # the keys just stored are read back by other threads
    rank, prefix = _pick_digit(tl.sum(tl.reshape(hist, (NB, SPREAD)), 1), rank, prefix, BITS)
    # Later digits, among the keys that share the digits found so far: these spread well.
    for p in tl.static_range(1, 32 // BITS):
        shift = 32 - BITS * (p + 1)  # of this pass's digit
        hist = tl.zeros((NB,), dtype=tl.int32)
        for start in range(0, M, BLOCK):
            offs = start + idx
            inb = offs < M
            key = tl.load(row_keys + offs, mask=inb, other=0).to(tl.uint32, bitcast=True)
            sel = inb & ((key >> (shift + BITS)) == prefix)
            digit = ((key >> shift) & (NB - 1)).to(tl.int32)
            hist += tl.histogram(digit, NB, mask=sel)
        rank, prefix = _pick_digit(hist, rank, prefix, BITS)

    # Mask: every key below T, and the first rank + 1 units (by index) whose key is T.
    ties_before = tl.zeros((), dtype=tl.int32)
    for start in range(0, M, BLOCK):
        offs = start + idx
        inb = offs < M
        key = tl.load(row_keys + offs, mask=inb, other=0).to(tl.uint32, bitcast=True)
        tie = inb & (key == prefix)
        tie_rank = ties_before + tl.cumsum(tie.to(tl.int32), 0) - 1
        masked = inb & ((key < prefix) | (tie & (tie_rank <= rank)))
        tl.store(row_mask + offs, masked, mask=inb)
        ties_before += tl.sum(tie.to(tl.int32), 0)


@triton.jit
def _stats_kernel(x_ptr, mask_ptr, k_ptr, part_ptr, G, M, span, tiles,
                  FILL: tl.constexpr, BLOCK: tl.constexpr):
    """Fill statistics of `span` units of one (b, g) row: min and max (uniform) or the sum
    (mean) of x over the kept units, or over all units where all are masked (SPEC step 3)."""
    pid = tl.program_id(0)
    bg = (pid // tiles).to(tl.int64)  # the row b * G + g
    first = (pid % tiles) * span
    b = bg // G
    all_masked = tl.load(k_ptr + b) >= M
    idx = tl.arange(0, BLOCK)
    lo = tl.full((), INF, dtype=tl.float32)
    hi = tl.full((), -INF, dtype=tl.float32)
    has_nan = tl.zeros((), dtype=tl.int32)
    total = tl.zeros((), dtype=tl.float64)
    for start in range(first, tl.minimum(first + span, M), BLOCK):
        offs = start + idx
        inb = offs < M
        masked = tl.load(mask_ptr + b * M + offs, mask=inb, other=1) != 0
        use = inb & (~masked | all_masked)
        xv = tl.load(x_ptr + bg * M + offs, mask=use, other=0.0).to(tl.float32)
        if FILL == FILL_UNIFORM:
            nan = xv != xv
            lo = tl.minimum(lo, tl.min(tl.where(use & ~nan, xv, INF), 0))
            hi = tl.maximum(hi, tl.max(tl.where(use & ~nan, xv, -INF), 0))
            has_nan |= tl.max((use & nan).to(tl.int32), 0)
        else:
            total += tl.sum(tl.where(use, xv.to(tl.float64), 0.0), 0)
    part = part_ptr + pid.to(tl.int64) * 2
    if FILL == FILL_UNIFORM:  # NaN propagates, as torch.amin / amax do
        tl.store(part, tl.where(has_nan != 0, NAN, lo).to(tl.float64))
        tl.store(part + 1, tl.where(has_nan != 0, NAN, hi).to(tl.float64))
    else:
        tl.store(part, total)


@triton.jit
def _fill_kernel(x_ptr, mask_ptr, k_ptr, part_ptr, out_ptr, BG, G, M, tiles, stat_tiles, seed,
                 offset, value, FILL: tl.constexpr, ROWS: tl.constexpr, GROUPS: tl.constexpr,
                 STAT_TILES: tl.constexpr, ROUND_EACH: tl.constexpr):
    # A program covers GROUPS groups of 4 consecutive counters n = 4c .. 4c+3 (the four words
    # of one Philox call) in each of ROWS (b, g) rows: many short rows or a tile of a long one.
    pid = tl.program_id(0)
    bg = (pid // tiles).to(tl.int64) * ROWS + tl.arange(0, ROWS)[:, None, None]  # b * G + g
    group = tl.arange(0, GROUPS)[None, :, None]
    word = tl.arange(0, 4)[None, None, :]
    base = offset + bg * M  # the counter n of element (b, g, 0)
    c = base // 4 + (pid % tiles) * GROUPS + group
    m = c * 4 + word - base
    inb = (bg < BG) & (m >= 0) & (m < M)
    xv = tl.load(x_ptr + bg * M + m, mask=inb)
    masked = tl.load(mask_ptr + (bg // G) * M + m, mask=inb, other=0) != 0
    # The row's statistics, from the partial ones of _stats_kernel, in a fixed order.
    part = part_ptr + (bg * stat_tiles + tl.arange(0, STAT_TILES)[None, None, :]) * 2
    have = (bg < BG) & (tl.arange(0, STAT_TILES)[None, None, :] < stat_tiles)
    if FILL == FILL_UNIFORM:
        lo = tl.load(part, mask=have, other=INF)
        hi = tl.load(part + 1, mask=have, other=-INF)
        nan = tl.max(((lo != lo) | (hi != hi)).to(tl.int32), 2, keep_dims=True) != 0
        lo = tl.where(nan, NAN, tl.min(tl.where(lo != lo, INF, lo), 2, keep_dims=True))
        hi = tl.where(nan, NAN, tl.max(tl.where(hi != hi, -INF, hi), 2, keep_dims=True))
        lo, hi = lo.to(tl.float32), hi.to(tl.float32)
        # int64 c: randint4x splits it into the counter words (low, high 32 bits, 0, 0).
        w0, w1, w2, w3 = tl.randint4x(seed, c)
        w = tl.where(word == 0, w0, tl.where(word == 1, w1, tl.where(word == 2, w2, w3)))
        r = tl.uint_to_uniform_float(w)
        if ROUND_EACH:  # Triton would fuse lo + r * d into an FMA; PTX never fuses mul.rn
            step = tl.inline_asm_elementwise("mul.rn.f32 $0, $1, $2;", "=r,r,r", [r, hi - lo],
                                             dtype=tl.float32, is_pure=True, pack=1)
        else:  # the interpreter (numpy) rounds each step and has no inline PTX
            step = r * (hi - lo)
        fill = lo + step
    elif FILL == FILL_MEAN:
        total = tl.sum(tl.load(part, mask=have, other=0.0), 2, keep_dims=True)
        k = tl.load(k_ptr + bg // G, mask=bg < BG, other=0)
        fill = (total / tl.where(k >= M, M, M - k)).to(tl.float32)
    else:
        fill = value
    out = tl.where(masked, fill.to(xv.dtype), xv)  # kept units: x's own bits
    tl.store(out_ptr + bg * M + m, out, mask=inb)


# Units per tile of the select and stats kernels, elements per program of the fill kernel (powers
# of 2; the fill's >= 4). The interpreter pays per operation, not per element: far larger blocks.
INTERPRETED = isinstance(_select_kernel, InterpretedFunction)
if INTERPRETED:
    SELECT_BLOCK, STATS_BLOCK, FILL_BLOCK = 65536, 65536, 16384
else:
    SELECT_BLOCK, STATS_BLOCK, FILL_BLOCK = 4096, 2048, 2048
MAX_STAT_TILES = 32  # partial statistics per row, all read by each fill program of the row


def launch(x: torch.Tensor, score: torch.Tensor, k: torch.Tensor, *, abs: bool = True,
           fill: str = "uniform", value: float = 0.0, seed: int = 0, offset: int = 0,
           select_block: int = SELECT_BLOCK, stats_block: int = STATS_BLOCK,
           fill_block: int = FILL_BLOCK):
    """The op's body; the block sizes are parameters so tests can cut small rows into tiles."""
    B, G, _, M = checks.check_mask(x, score, k, fill=fill, offset=offset)
    checks.check_mask_k(k, M)
    out = torch.empty_like(x, memory_format=torch.contiguous_format)
    masked = torch.empty((B, M), dtype=torch.bool, device=x.device)
    if B == 0 or M == 0:
        out.copy_(x)
        masked.zero_()
        return out, masked
    x, score, k = x.contiguous(), score.contiguous(), k.contiguous()
    mode = FILL_CODES[fill]

    keys = torch.empty((B, M), dtype=torch.int32, device=x.device)
    wrap_triton(_select_kernel)[(B,)](
        score, k, keys, masked, score.shape[1], M, ABS=abs,
        BLOCK=min(select_block, triton.next_power_of_2(M)), BITS=DIGIT_BITS, SPREAD=HIST_COPIES,
        num_warps=8)

    # Each row's fill statistics in at most MAX_STAT_TILES parts of `span` units.
    stats_block = min(stats_block, triton.next_power_of_2(M))
    span = triton.cdiv(triton.cdiv(M, min(triton.cdiv(M, stats_block), MAX_STAT_TILES)),
                       stats_block) * stats_block
    stat_tiles = triton.cdiv(M, span)
    parts = torch.empty((B * G, stat_tiles, 2), dtype=torch.float64, device=x.device)
    if mode != FILL_CONSTANT:
        wrap_triton(_stats_kernel)[(B * G * stat_tiles,)](
            x, masked, k, parts, G, M, span, stat_tiles, FILL=mode, BLOCK=stats_block,
            num_warps=4)

    # + 3: a row's first group of four counters may start up to 3 elements before it.
    groups = min(fill_block, triton.next_power_of_2(M + 3)) // 4
    rows = fill_block // (4 * groups)
    tiles = triton.cdiv(M + 3, 4 * groups)
    wrap_triton(_fill_kernel)[(triton.cdiv(B * G, rows) * tiles,)](
        x, masked, k, parts, out, B * G, G, M, tiles, stat_tiles, seed, offset, value,
        FILL=mode, ROWS=rows, GROUPS=groups, STAT_TILES=triton.next_power_of_2(stat_tiles),
        ROUND_EACH=not INTERPRETED, num_warps=4)
    return out, masked


@triton_op("smoot::mask_triton", mutates_args=(), schema=schema_of("mask"))
def mask_triton(x: torch.Tensor, score: torch.Tensor, k: torch.Tensor, *, abs: bool = True,
                fill: str = "uniform", value: float = 0.0, seed: int = 0,
                offset: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    return launch(x, score, k, abs=abs, fill=fill, value=value, seed=seed, offset=offset)


# triton_op traces mask_triton itself for fake tensors, which works only with compiled kernels:
# the interpreter's kernels would touch the fake data.
if INTERPRETED:
    mask_triton.register_fake(_autograd.fake_mask)
_autograd.setup_mask_autograd("smoot::mask_triton")
