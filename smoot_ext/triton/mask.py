"""``smoot::mask_triton``: docs/SPEC.md ``smoot::mask`` as Triton kernels.

Short rows (M up to SHORT_MAX) take one fused kernel, a program per row: the unit scores u and
their order-preserving 32-bit keys stay in registers, a radix select (``tl.histogram`` over four
8-bit digits) finds the k-th key, ties go to the lower index (``tl.cumsum``), then the fill
statistics and the fills of every channel.

Long rows are split into chunks of CHUNK units, a program per (row, chunk), as vLLM's and
FlashInfer's per-row top-k split them:
1. ``_keys_kernel`` forms the keys, stores them and counts the first digit;
2. ``_pass_kernel`` (three launches) counts the next digit among the keys that share the digits
   found so far, and stops early once the chosen bin is resolved (all its keys are masked);
3. ``_mask_kernel`` writes the mask (ties ranked across chunks from the per-chunk counts) and
   each chunk's partial fill statistics;
4. ``_reduce_kernel`` reduces them to two numbers per (row, channel), once;
5. ``_fill_kernel`` copies kept values and writes the fills, many programs per row: each covers
   whole groups of four element counters n, so one Philox call serves four consecutive elements
   (SPEC step 6) and the result does not depend on the tiling.
Each pass adds its chunk's histogram to the row's (atomics on integers: exact in any order) and
keeps it per chunk for the tie ranks. docs/triton_mask.md estimates the bandwidth of both paths.
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
BITS = tl.constexpr(8)  # 4 radix passes of 256 bins
PASSES = tl.constexpr(32 // BITS.value)
NBINS, DIGIT = tl.constexpr(1 << BITS.value), tl.constexpr((1 << BITS.value) - 1)


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
def _keep_stats(xv, use, FILL: tl.constexpr):
    """Fill statistics of one block (SPEC step 3): (min, max) of x over `use`, both NaN where a
    used x is NaN (as torch.amin / amax), or (sum in float64, 0)."""
    if FILL == FILL_UNIFORM:
        nan = xv != xv
        has_nan = tl.max((use & nan).to(tl.int32), 0) != 0
        lo = tl.min(tl.where(use & ~nan, xv, INF), 0)
        hi = tl.max(tl.where(use & ~nan, xv, -INF), 0)
        return tl.where(has_nan, NAN, lo).to(tl.float64), tl.where(has_nan, NAN, hi).to(tl.float64)
    else:
        return tl.sum(tl.where(use, xv.to(tl.float64), 0.0), 0), tl.zeros((), dtype=tl.float64)


@triton.jit
def _uniform_fill(lo, hi, word, w0, w1, w2, w3, ROUND_EACH: tl.constexpr):
    """lo + r * (hi - lo) for the Philox word `word` of (w0, w1, w2, w3), the product rounded
    apart from the sum (SPEC step 6)."""
    w = tl.where(word == 0, w0, tl.where(word == 1, w1, tl.where(word == 2, w2, w3)))
    r = tl.uint_to_uniform_float(w)
    if ROUND_EACH:  # Triton would fuse lo + r * d into an FMA; PTX never fuses mul.rn
        step = tl.inline_asm_elementwise("mul.rn.f32 $0, $1, $2;", "=r,r,r", [r, hi - lo],
                                         dtype=tl.float32, is_pure=True, pack=1)
    else:  # the interpreter (numpy) rounds each step and has no inline PTX
        step = r * (hi - lo)
    return lo + step


@triton.jit
def _checked_k(k_ptr, b, M, ok_ptr, report):
    """Row b's k as int32; where `report`, a k outside [0, M] (read as k's own dtype, before the
    cast can wrap it into range) clears the launch's ok flag, which the host checks after it.
    A bad k leaves every access in bounds: it only changes which units are masked."""
    k = tl.load(k_ptr + b)
    tl.atomic_min(ok_ptr, 0, mask=report & ((k < 0) | (k > M)), sem="relaxed")
    return k.to(tl.int32)


@triton.jit
def _short_kernel(x_ptr, score_ptr, k_ptr, mask_ptr, out_ptr, ok_ptr, G, S, M, seed, offset, value,
                  ABS: tl.constexpr, FILL: tl.constexpr, BLOCK: tl.constexpr,
                  ROUND_EACH: tl.constexpr):
    b = tl.program_id(0).to(tl.int64)
    idx = tl.arange(0, BLOCK)
    inb = idx < M
    key = _unit_key(score_ptr + b * S * M, idx, inb, S, M, ABS)
    k = _checked_k(k_ptr, b, M, ok_ptr, True)
    # Radix select, most significant digit first: T (`prefix`) is the k-th smallest key and
    # `rank` the number of units with key T before it. For k = 0, rank stays -1, every digit
    # is 0 and T = 0, which no key takes.
    rank = k - 1
    prefix = tl.zeros((), dtype=tl.uint32)
    for p in tl.static_range(PASSES):
        shift = 32 - BITS * (p + 1)
        if p == 0:
            sel = inb
        else:
            sel = inb & ((key >> (shift + BITS)) == prefix)
        digit = ((key >> shift) & DIGIT).to(tl.int32)
        rank, prefix = _pick_digit(tl.histogram(digit, NBINS, mask=sel), rank, prefix, BITS)
    tie = inb & (key == prefix)
    masked = inb & ((key < prefix) | (tie & (tl.cumsum(tie.to(tl.int32), 0) - 1 <= rank)))
    tl.store(mask_ptr + b * M + idx, masked, mask=inb)
    use = inb & (~masked | (k >= M))
    for g in range(G):
        bg = b * G + g
        xv = tl.load(x_ptr + bg * M + idx, mask=inb)
        if FILL == FILL_CONSTANT:
            fill = value
        else:  # one call site: Triton compares a helper's NaN global with itself per call
            a, c = _keep_stats(xv.to(tl.float32), use, FILL)
            if FILL == FILL_UNIFORM:
                n = offset + bg * M + idx  # the element counters
                w0, w1, w2, w3 = tl.randint4x(seed, n // 4)
                fill = _uniform_fill(a.to(tl.float32), c.to(tl.float32), n % 4, w0, w1, w2, w3,
                                     ROUND_EACH)
            else:
                fill = (a / tl.where(k >= M, M, M - k)).to(tl.float32)
        tl.store(out_ptr + bg * M + idx, tl.where(masked, fill.to(xv.dtype), xv), mask=inb)


@triton.jit
def _keys_kernel(score_ptr, keys_ptr, hist_ptr, row_hist_ptr, S, M, chunks, ABS: tl.constexpr,
                 CHUNK: tl.constexpr):
    pid = tl.program_id(0)
    b = (pid // chunks).to(tl.int64)
    offs = (pid % chunks) * CHUNK + tl.arange(0, CHUNK)
    inb = offs < M
    key = _unit_key(score_ptr + b * S * M, offs, inb, S, M, ABS)
    tl.store(keys_ptr + b * M + offs, key.to(tl.int32, bitcast=True), mask=inb)
    bins = tl.arange(0, NBINS)
    hist = tl.histogram((key >> (32 - BITS)).to(tl.int32), NBINS, mask=inb)
    tl.store(hist_ptr + (b * PASSES * chunks + pid % chunks) * NBINS + bins, hist)  # pass 0
    tl.atomic_add(row_hist_ptr + b * (PASSES * NBINS) + bins, hist, sem="relaxed")


@triton.jit
def _row_state(row_hist_ptr, b, k, PASS: tl.constexpr):
    """From the row's histograms of passes 0 .. PASS - 1: (rank, prefix, level, resolved), the
    radix select's state after its last pass that mattered. `level` is that pass: prefix holds
    (level + 1) digits. Resolved: the chosen bin's keys are all masked (rank is its last),
    so later digits change nothing."""
    bins = tl.arange(0, NBINS)
    rank = k - 1
    prefix = tl.zeros((), dtype=tl.uint32)
    level = tl.zeros((), dtype=tl.int32)
    resolved = tl.zeros((), dtype=tl.int32)
    for p in tl.static_range(PASS):
        hist = tl.load(row_hist_ptr + b * (PASSES * NBINS) + p * NBINS + bins)
        new_rank, new_prefix = _pick_digit(hist, rank, prefix, BITS)
        count = tl.sum(tl.where(bins == (new_prefix & DIGIT).to(tl.int32), hist, 0), 0)
        rank = tl.where(resolved != 0, rank, new_rank)
        prefix = tl.where(resolved != 0, prefix, new_prefix)
        level = tl.where(resolved != 0, level, p)
        resolved = resolved | ((new_rank == count - 1) & (count > 0)).to(tl.int32)
    return rank, prefix, level, resolved


@triton.jit
def _pass_kernel(keys_ptr, k_ptr, hist_ptr, row_hist_ptr, M, chunks, PASS: tl.constexpr,
                 CHUNK: tl.constexpr):
    pid = tl.program_id(0)
    b = (pid // chunks).to(tl.int64)
    _, prefix, _, resolved = _row_state(row_hist_ptr, b, tl.load(k_ptr + b).to(tl.int32), PASS)
    if resolved == 0:  # early stop: the later histograms are never read
        offs = (pid % chunks) * CHUNK + tl.arange(0, CHUNK)
        inb = offs < M
        key = tl.load(keys_ptr + b * M + offs, mask=inb, other=0).to(tl.uint32, bitcast=True)
        shift: tl.constexpr = 32 - BITS * (PASS + 1)
        sel = inb & ((key >> (shift + BITS)) == prefix)
        bins = tl.arange(0, NBINS)
        hist = tl.histogram(((key >> shift) & DIGIT).to(tl.int32), NBINS, mask=sel)
        tl.store(hist_ptr + ((b * PASSES + PASS) * chunks + pid % chunks) * NBINS + bins, hist)
        tl.atomic_add(row_hist_ptr + b * (PASSES * NBINS) + PASS * NBINS + bins, hist,
                      sem="relaxed")


@triton.jit
def _mask_kernel(keys_ptr, k_ptr, hist_ptr, row_hist_ptr, mask_ptr, x_ptr, part_ptr, ok_ptr, G, M, chunks,
                 FILL: tl.constexpr, CHUNK: tl.constexpr, CHUNKS: tl.constexpr):
    """The mask of one chunk and its partial fill statistics per channel."""
    pid = tl.program_id(0)
    b = (pid // chunks).to(tl.int64)
    j = pid % chunks
    k = _checked_k(k_ptr, b, M, ok_ptr, j == 0)
    rank, prefix, level, _ = _row_state(row_hist_ptr, b, k, PASSES)
    shift = (32 - (level + 1) * BITS).to(tl.uint32)  # keys compare on their first level + 1 digits
    # Units of the chosen bin in earlier chunks: the per-chunk counts of that pass.
    earlier = tl.arange(0, CHUNKS)
    counts = tl.load(hist_ptr + ((b * PASSES + level) * chunks + earlier) * NBINS
                     + (prefix & DIGIT).to(tl.int32), mask=earlier < j, other=0)
    offs = j * CHUNK + tl.arange(0, CHUNK)
    inb = offs < M
    key = tl.load(keys_ptr + b * M + offs, mask=inb, other=0).to(tl.uint32, bitcast=True) >> shift
    tie = inb & (key == prefix)
    tie_rank = tl.sum(counts, 0) + tl.cumsum(tie.to(tl.int32), 0) - 1
    masked = inb & ((key < prefix) | (tie & (tie_rank <= rank)))
    tl.store(mask_ptr + b * M + offs, masked, mask=inb)
    if FILL != FILL_CONSTANT:
        use = inb & (~masked | (k >= M))
        for g in range(G):
            bg = b * G + g
            xv = tl.load(x_ptr + bg * M + offs, mask=use, other=0.0).to(tl.float32)
            a, c = _keep_stats(xv, use, FILL)
            part = part_ptr + (bg * chunks + j) * 2
            tl.store(part, a)
            tl.store(part + 1, c)


@triton.jit
def _reduce_kernel(part_ptr, k_ptr, stats_ptr, G, M, chunks, FILL: tl.constexpr, CHUNKS: tl.constexpr):
    """Per (row, channel), once: (lo, hi) of the uniform fill, or the mean fill, in float32."""
    bg = tl.program_id(0).to(tl.int64)
    j = tl.arange(0, CHUNKS)
    have = j < chunks
    part = part_ptr + (bg * chunks + j) * 2
    if FILL == FILL_UNIFORM:
        lo = tl.load(part, mask=have, other=INF)
        hi = tl.load(part + 1, mask=have, other=-INF)
        nan = tl.max(((lo != lo) | (hi != hi)).to(tl.int32), 0) != 0
        lo = tl.where(nan, NAN, tl.min(tl.where(lo != lo, INF, lo), 0))
        hi = tl.where(nan, NAN, tl.max(tl.where(hi != hi, -INF, hi), 0))
        tl.store(stats_ptr + bg * 2, lo.to(tl.float32))
        tl.store(stats_ptr + bg * 2 + 1, hi.to(tl.float32))
    else:
        k = tl.load(k_ptr + bg // G)
        total = tl.sum(tl.load(part, mask=have, other=0.0), 0)
        tl.store(stats_ptr + bg * 2, (total / tl.where(k >= M, M, M - k)).to(tl.float32))


@triton.jit
def _fill_kernel(x_ptr, mask_ptr, stats_ptr, out_ptr, BG, G, M, tiles, seed, offset, value,
                 FILL: tl.constexpr, ROWS: tl.constexpr, GROUPS: tl.constexpr,
                 ROUND_EACH: tl.constexpr):
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
    stats = stats_ptr + bg * 2  # _reduce_kernel's two numbers of the row
    if FILL == FILL_UNIFORM:
        lo = tl.load(stats, mask=bg < BG)
        hi = tl.load(stats + 1, mask=bg < BG)
        # int64 c: randint4x splits it into the counter words (low, high 32 bits, 0, 0).
        w0, w1, w2, w3 = tl.randint4x(seed, c)
        fill = _uniform_fill(lo, hi, word, w0, w1, w2, w3, ROUND_EACH)
    elif FILL == FILL_MEAN:
        fill = tl.load(stats, mask=bg < BG)
    else:
        fill = value
    out = tl.where(masked, fill.to(xv.dtype), xv)  # kept units: x's own bits
    tl.store(out_ptr + bg * M + m, out, mask=inb)


INTERPRETED = isinstance(_short_kernel, InterpretedFunction)
# Rows up to SHORT_MAX units take the fused kernel; longer ones chunks of CHUNK units; FILL_BLOCK
# elements per program of the fill kernel (powers of 2; the fill's >= 4). The interpreter pays
# per operation, not per element: far larger chunks.
SHORT_MAX, CHUNK, FILL_BLOCK = (4096, 65536, 16384) if INTERPRETED else (4096, 4096, 2048)


def launch(x: torch.Tensor, score: torch.Tensor, k: torch.Tensor, *, abs: bool = True,
           fill: str = "uniform", value: float = 0.0, seed: int = 0, offset: int = 0,
           short_max: int = SHORT_MAX, chunk: int = CHUNK, fill_block: int = FILL_BLOCK):
    """The op's body; the sizes are parameters so tests can split small rows into chunks."""
    B, G, S, M = checks.check_mask(x, score, k, fill=fill, offset=offset)
    out = torch.empty_like(x, memory_format=torch.contiguous_format)
    masked = torch.empty((B, M), dtype=torch.bool, device=x.device)
    if B == 0 or M == 0:
        checks.check_mask_k(k, M)
        out.copy_(x)
        masked.zero_()
        return out, masked
    x, score, k = x.contiguous(), score.contiguous(), k.contiguous()
    mode = FILL_CODES[fill]
    ok = torch.ones(1, dtype=torch.int32, device=x.device)  # the kernels check k (checks.check_mask_k_flag)
    if M <= short_max:
        wrap_triton(_short_kernel)[(B,)](
            x, score, k, masked, out, ok, G, S, M, seed, offset, value, ABS=abs, FILL=mode,
            BLOCK=triton.next_power_of_2(M), ROUND_EACH=not INTERPRETED, num_warps=8)
        checks.check_mask_k_flag(ok, k, M)
        return out, masked

    chunk = min(chunk, triton.next_power_of_2(M))
    chunks = triton.cdiv(M, chunk)
    keys = torch.empty((B, M), dtype=torch.int32, device=x.device)
    hist = torch.empty((B, PASSES.value, chunks, NBINS.value), dtype=torch.int32, device=x.device)
    row_hist = torch.zeros((B, PASSES.value, NBINS.value), dtype=torch.int32, device=x.device)
    grid = (B * chunks,)
    wrap_triton(_keys_kernel)[grid](score, keys, hist, row_hist, S, M, chunks, ABS=abs,
                                    CHUNK=chunk, num_warps=8)
    for p in range(1, PASSES.value):
        wrap_triton(_pass_kernel)[grid](keys, k, hist, row_hist, M, chunks, PASS=p, CHUNK=chunk,
                                        num_warps=8)
    parts = torch.empty((B * G, chunks, 2), dtype=torch.float64, device=x.device)
    wrap_triton(_mask_kernel)[grid](keys, k, hist, row_hist, masked, x, parts, ok, G, M, chunks,
                                    FILL=mode, CHUNK=chunk, CHUNKS=triton.next_power_of_2(chunks),
                                    num_warps=8)
    stats = torch.empty((B * G, 2), dtype=torch.float32, device=x.device)
    if mode != FILL_CONSTANT:
        wrap_triton(_reduce_kernel)[(B * G,)](parts, k, stats, G, M, chunks, FILL=mode,
                                              CHUNKS=triton.next_power_of_2(chunks), num_warps=1)

    # + 3: a row's first group of four counters may start up to 3 elements before it.
    groups = min(fill_block, triton.next_power_of_2(M + 3)) // 4
    rows = fill_block // (4 * groups)
    tiles = triton.cdiv(M + 3, 4 * groups)
    wrap_triton(_fill_kernel)[(triton.cdiv(B * G, rows) * tiles,)](
        x, masked, stats, out, B * G, G, M, tiles, seed, offset, value, FILL=mode, ROWS=rows,
        GROUPS=groups, ROUND_EACH=not INTERPRETED, num_warps=4)
    checks.check_mask_k_flag(ok, k, M)
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
