#!/usr/bin/env python
"""Differential fuzzing of smoot::mask and smoot::update_k against smoot_ext.reference (issue 34).

``make_case(seed, scale)`` is the one case generator, a function of its seed alone: it draws an
op's arguments over shapes (B, G or C, M from 0 and 1 to past 2**16, primes, powers of two and
their neighbours), dtypes (float16, bfloat16, float32, float64, mixed), layouts (non-contiguous,
channels_last, expanded and zero strides, storage offsets), k (0, M, per row, edges; int32 and
int64), scores (ties, NaN, +-inf, +-0, subnormals, huge and tiny), every fill and odd values,
seeds and offsets (counters past 2**32), the public API's units, layouts, generators and padding
lengths, and, at a small rate, arguments docs/SPEC.md calls errors. ``scale="small"`` keeps to
sizes Triton's interpreter runs in a fraction of a second. ``run_case`` runs a case on each
backend and compares it with the reference (tests/cases.py's comparisons):

- a finding: what docs/SPEC.md rules out (mask or kept values not bit for bit, a uniform or
  constant fill beyond 1 ulp, a mean beyond 1e-5, delta beyond 1e-6, k_new not SPEC's step 4 of
  the backend's own delta, or not the reference's where mu * delta is not near an integer), an
  input written to, a crash, an error that is not the reference's (type and words), a
  generator not advanced as the reference's; and, for the backends of BIT_EXACT or under
  --strict, any bit of any output that is not the reference's (any NaN equals any NaN);
- a bit difference: within SPEC's tolerance, not the reference's bits; counted by kind;
- a known finding: one of KNOWN, counted (reported in issue 34, reproduced in tests/test_fuzz.py).

tests/test_fuzz.py runs a fixed list of seeds in CI. This script runs many:

    python scripts/fuzz.py --minutes 10 --backends cpu       # both CPU row loops (SMOOT_CPU_ISA)
    python scripts/fuzz.py --cases 300 --backends triton     # the interpreter: scale "small"
    python scripts/fuzz.py --case 1234 --scale full --backends cpu-auto -v   # one case again

It prints progress, each finding with the line that replays it, the cases run on each backend,
the bit differences by kind and the coverage (how many cases drew each feature); ``--json``
writes the same as a summary. Exit status 1 if anything was found, else 0.
"""
from __future__ import annotations

import argparse
import collections
import contextlib
import dataclasses
import json
import math
import os
import random
import sys
import time
import warnings
from pathlib import Path

import torch

# Without a GPU, Triton's kernels run in its interpreter on CPU tensors: set before smoot_ext
# (and so any @triton.jit) is imported, as tests/conftest.py does.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import cases
import pytest
from test_update_k import expected_k

import smoot_ext
from smoot_ext import ops, reference
from smoot_ext.checks import FILLS, ROUNDINGS

SCALES = ("full", "small")
DTYPES = cases.FLOAT_DTYPES
NMANT = {torch.float16: 10, torch.bfloat16: 7, torch.float32: 23, torch.float64: 52}
INVALID_RATE = 0.05
# x's elements at most in a full case's ordinary shapes (the reference's Philox, a few us an
# element, is most of a case's time); rows past 2**16 come one or two at a time.
ELEMENTS = 100_000
# Threads of the backends' calls (--threads); everything else (generation, the reference, the
# comparisons: many small ops) runs on one thread, which on a shared, busy CPU is up to a
# hundred times faster than two (each op waits for a thread that is not scheduled).
KERNEL_THREADS = torch.get_num_threads()
# Per op, the backends seen to give the reference's every bit (the CPU mask kernel, fills
# included): any bit difference there is a finding. Elsewhere SPEC's tolerances decide (the CPU
# update_k's delta, summed in another order than torch's, is often 1 ulp from the reference's).
BIT_EXACT = {"mask": ("cpu",), "update_k": ()}
# Findings already reported (issue 34), recognised (``_known``) so that a run fails on new ones
# only; tests/test_fuzz.py reproduces each in a strict xfail test, which fails once it is fixed.
KNOWN = {
    "negative_zero_value": "fill='constant', value=-0.0: every registered op fills +0.0 (torch's dispatcher "
                           "drops a keyword argument equal to its schema default, 0.0), the reference -0.0",
    "value_beyond_dtype": "fill='constant' with a value outside x's dtype (1e30 or -70000.0 for float16): the "
                          "reference raises RuntimeError (torch.full_like), the kernels fill +-inf",
    "mean_summation_order": "fill='mean' over values near the dtype's largest (float32, bfloat16, float64) beside "
                            "ordinary ones: their float64 sum cancels, absorbs or overflows by summation order, so "
                            "the reference, the CPU baseline and AVX2 row loops and Triton differ beyond SPEC's 1e-5 "
                            "(e.g. float32 [max, -max, 1 x 6]: exact 0.75, reference 0.5, CPU 0.75)",
    "interpreter_bf16_subnormal": "Triton's interpreter (triton/runtime/interpreter.py, _convert_float) converts "
                                  "bfloat16 subnormals to wrong float32 values; a GPU converts them exactly",
}
# The interpreter's numpy arithmetic warns on the NaN that NaN and inf inputs make.
warnings.filterwarnings("ignore", "invalid value encountered", RuntimeWarning)
warnings.filterwarnings("ignore", "overflow encountered", RuntimeWarning)
warnings.filterwarnings("ignore", "All-NaN slice encountered", RuntimeWarning)


# ------------------------------------------------------------------------------------ the cases

@dataclasses.dataclass
class Case:
    """One call: ``api`` "op" is torch.ops.smoot.<op> (or its Triton twin) on the op's own
    layout, "public" is smoot_ext.<op>; ``args`` are its tensors, ``kwargs`` the rest but
    ``backend``. ``invalid`` names the SPEC error the case was drawn to raise, if any."""
    seed: int
    scale: str
    op: str
    api: str
    args: tuple
    kwargs: dict
    tags: list = dataclasses.field(default_factory=list)
    blocks: dict = dataclasses.field(default_factory=dict)  # Triton mask launch sizes (api "op")
    invalid: str | None = None
    form: dict = dataclasses.field(default_factory=dict)    # public mask: how x maps to (B, G, M)

    def describe(self) -> str:
        def arg(t):
            if not isinstance(t, torch.Tensor):
                return repr(t)
            dt = str(t.dtype).removeprefix("torch.")
            lay = "" if t.is_contiguous() else f" strides={t.stride()}"
            off = f" storage_offset={t.storage_offset()}" if t.storage_offset() else ""
            return f"{dt}{tuple(t.shape)}{lay}{off}"
        parts = [arg(t) for t in self.args] + [f"{k}={arg(v)}" for k, v in self.kwargs.items()]
        blocks = f" triton_blocks={self.blocks}" if self.blocks else ""
        return (f"{self.op}/{self.api} " + ", ".join(parts) + blocks
                + (f" [invalid: {self.invalid}]" if self.invalid else "") + f" tags={','.join(self.tags)}")

    def reproducer(self, backend: str) -> str:
        return f"python scripts/fuzz.py --case {self.seed} --scale {self.scale} --backends {backend} -v"


def _subnormal(r: random.Random, dtype) -> float:
    return torch.finfo(dtype).tiny * 2.0 ** -r.randint(1, NMANT[dtype])


def _specials(r: random.Random, dtype, tags: list, what: str) -> list[float]:
    """A few special values of ``dtype`` (as float64) to sprinkle, each tagged."""
    fi = torch.finfo(dtype)
    table = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf, "zero": 0.0, "-zero": -0.0,
             "subnormal": _subnormal(r, dtype), "-subnormal": -_subnormal(r, dtype), "max": fi.max,
             "-max": -fi.max}
    names = r.sample(sorted(table), r.randint(1, 4))
    tags += [f"{what}:{n}" for n in names]
    return [table[n] for n in names]


def _sprinkle(r, g, v: torch.Tensor, specials: list[float]) -> torch.Tensor:
    frac = r.choice((0.001, 0.01, 0.1, 0.5))
    where = torch.rand(v.shape, generator=g, dtype=torch.float64) < frac
    pick = torch.randint(0, len(specials), v.shape, generator=g)
    return torch.where(where, torch.tensor(specials, dtype=torch.float64)[pick], v)


def _x_values(r, g, shape, dtype, tags: list) -> torch.Tensor:
    kind = r.choices(("randn", "constant", "ints", "special"), weights=(70, 8, 10, 12))[0]
    tags.append(f"x:{kind}")
    if kind == "constant":
        return torch.full(shape, r.choice((0.0, -0.0, 2.5, -1e3)), dtype=dtype)
    if kind == "ints":
        return torch.randint(-3, 4, shape, generator=g).to(dtype)
    v = torch.randn(shape, generator=g, dtype=torch.float64) * r.choice((1.0, 3.0, 1e-3, 1e4)) \
        + r.choice((0.0, 1.0, -5.0))
    if kind == "special":
        v = _sprinkle(r, g, v, _specials(r, dtype, tags, "x"))
    return v.to(dtype)


def _score_values(r, g, shape, dtype, tags: list) -> torch.Tensor:
    """Scores that break careless selections: ties, signed zeros, specials, subnormals, keys
    that differ in their last bits, magnitudes from underflow to overflow."""
    kind = r.choices(("randn", "levels", "equal", "zeros", "subnormal", "magnitudes", "last_bits", "top"),
                     weights=(30, 20, 6, 10, 10, 10, 8, 6))[0]
    tags.append(f"score:{kind}")
    fi = torch.finfo(dtype)
    if kind == "randn":
        v = torch.randn(shape, generator=g, dtype=torch.float64)
    elif kind == "levels":
        v = torch.randint(0, r.choice((1, 2, 3, 5)) + 1, shape, generator=g).double() * r.choice((0.5, 1.0, -1.0))
    elif kind == "equal":
        v = torch.full(shape, r.choice((1.0, 0.0, -2.0)), dtype=torch.float64)
    elif kind == "zeros":
        v = torch.randn(shape, generator=g, dtype=torch.float64)
        sign = torch.rand(shape, generator=g) < 0.5
        v = torch.where(torch.rand(shape, generator=g) < 0.6, torch.where(sign, -0.0, 0.0), v)
    elif kind == "subnormal":
        mant = torch.randint(0, 2 ** NMANT[dtype], shape, generator=g).double()
        v = mant * fi.tiny * 2.0 ** -NMANT[dtype] * torch.where(torch.rand(shape, generator=g) < 0.5, -1.0, 1.0)
        normal = torch.randn(shape, generator=g, dtype=torch.float64) * fi.tiny
        v = torch.where(torch.rand(shape, generator=g) < 0.2, normal, v)
    elif kind == "magnitudes":
        v = torch.randn(shape, generator=g, dtype=torch.float64) * torch.pow(
            10.0, torch.randint(-45, 39, shape, generator=g).double())
    elif kind == "last_bits":
        v = 1.0 + torch.randint(0, 64, shape, generator=g).double() * fi.eps
    else:  # "top": huge values near the largest float, with +inf and NaN
        v = fi.max * (0.5 + 0.5 * torch.rand(shape, generator=g, dtype=torch.float64))
        v = _sprinkle(r, g, v, [math.inf, math.nan])
    if r.random() < 0.3:
        v = _sprinkle(r, g, v, _specials(r, dtype, tags, "score"))
    return v.to(dtype)


def _restride(r, t: torch.Tensor, tags: list, what: str, expand_dims=()) -> torch.Tensor:
    """``t``'s values (or, "expanded", some of them repeated) in another memory layout."""
    kinds = ["contiguous"] * 3 + ["sliced", "offset"] + (["transposed"] if t.dim() > 1 else []) \
        + (["expanded"] if expand_dims else [])
    kind = r.choice(kinds)
    tags.append(f"{what}:{kind}")
    if kind == "transposed":
        return t.transpose(0, -1).contiguous().transpose(0, -1)
    if kind == "sliced":
        big = t.new_empty(*t.shape[:-1], 2 * t.shape[-1] + 1)
        big[..., 1::2] = t
        return big[..., 1::2]
    if kind == "offset":
        big = t.new_empty(t.numel() + 1)
        big[1:] = t.flatten()
        return big[1:].view(t.shape)
    if kind == "expanded":
        d = r.choice(expand_dims)
        return t.narrow(d, 0, min(1, t.shape[d])).expand(t.shape) if t.shape[d] else t
    return t


def _k_values(r, g, n: torch.Tensor, tags: list) -> torch.Tensor:
    """k (B,) with 0 <= k[b] <= n[b], in int32 or int64, in some layout."""
    B = n.shape[0]
    kind = r.choice(("random", "random", "zero", "all", "edges", "same"))
    if kind == "random":
        k = (torch.rand(B, generator=g, dtype=torch.float64) * (n + 1)).long().clamp(max=n)
    elif kind == "zero":
        k = torch.zeros(B, dtype=torch.int64)
    elif kind == "all":
        k = n.clone()
    elif kind == "edges":
        pick = torch.randint(0, 4, (B,), generator=g)
        k = torch.stack([torch.zeros_like(n), n.clamp(max=1), (n - 1).clamp(min=0), n])[pick, torch.arange(B)]
    else:
        k = torch.full((B,), r.randint(0, int(n.min()) if B else 0), dtype=torch.int64)
    k = k.to(r.choice((torch.int32, torch.int64)))
    tags += [f"k:{kind}", f"k:{str(k.dtype).removeprefix('torch.')}"]
    return _restride(r, k, tags, "k", expand_dims=(0,) if kind in ("zero", "same") else ())


def _seed_offset(r, numel: int) -> tuple[int, int]:
    seed = r.choice((0, 1, -1, 2**63 - 1, -2**63, 2**32 - 1, 2**32, r.randint(-2**63, 2**63 - 1),
                     r.randint(-2**63, 2**63 - 1)))
    offset = r.choice((0, 0, 1, 2, 3, r.randint(0, 2**40), 2**34 - r.randint(0, max(numel, 1)),
                       2**35 + 3, r.randint(0, 2**62), 2**63 - 1 - numel))
    return seed, max(offset, 0)


def _fill(r, tags: list) -> dict:
    fill = r.choices(FILLS, weights=(50, 25, 25))[0]
    value = r.choice((0.0, -0.0, -1.5, 0.3, r.gauss(0, 10), 1e30, -70000.0, math.nan, math.inf, 1e-45, 5e-324))
    abs_ = r.random() < 0.6
    tags += [f"fill:{fill}", f"abs:{abs_}"]
    return dict(abs=abs_, fill=fill, value=value)


def _mask_shape(r, scale: str, tags: list) -> tuple[int, int, int, int]:
    """(B, G, S, M): mostly short rows, some long ones, past 2**16 with B and G small; odd
    shapes (nothing, a very wide unit, a very tall batch) now and then."""
    small = scale == "small"
    few = (1, 2, 3, 4, 5, 7, 8, 13, 16, 17, 31, 32, 33, 61, 64, 100, 127, 128, 129, 251)
    odd = r.random()
    if odd < 0.06:
        kind = r.choice(("empty_batch", "no_units", "no_values", "wide_unit", "tall_batch"))
        tags.append(f"shape:{kind}")
        return {"empty_batch": (0, 2, 1, r.choice(few)), "no_units": (r.randint(1, 4), 2, 1, 0),
                "no_values": (r.randint(1, 5), 0, r.randint(1, 3), r.choice(few)),
                "wide_unit": (1, 300 if small else r.choice((65537, 70001)), r.randint(1, 2), r.randint(1, 2)),
                "tall_batch": (40 if small else r.choice((65537, 70001)), 1, 1, r.randint(1, 2))}[kind]
    if small:
        M = r.choice(few + (r.randint(1, 300),))
        B, G, S = r.choice((1, 2, 3, 4, 5, 8)), r.choice((1, 1, 2, 3, 4)), r.choice((1, 1, 2, 3, 5))
    elif r.random() < 0.05:
        M = r.choice((65536, 65537, 65521, 70001, 2**16 + r.randint(1, 9000), 131071))
        (B, G), S = r.choice(((1, 1), (1, 1), (2, 1), (1, 2))), r.choice((1, 1, 2, 3))
    elif r.random() < 0.2:
        M = r.choice((1021, 1024, 1025, 2039, 2048, 2050, 4093, 4096, 4099, 8191, 9000, r.randint(1000, 20000)))
        B, G, S = r.choice((1, 2, 3, 5, r.randint(1, 8))), r.choice((1, 2, 3)), r.choice((1, 2, 3, 4, 5))
    else:
        M = r.choice(few + (256, 257, 509, r.randint(1, 1000), r.randint(1, 1000)))
        B = r.choice((1, 2, 3, 5, 7, 13, 31, r.randint(1, 48)))
        G, S = r.choice((1, 1, 2, 3, 4, 5, 7)), r.choice((1, 1, 2, 3, 4, 5, 17))
    tags.append("M>2**16" if M > 2**16 else "M>1000" if M > 1000 else "M<=1000")
    return B if M > 2**16 else _fit(B, G * M), G, S, M


def _fit(B: int, per_row: int) -> int:
    """B, or fewer rows if B rows of ``per_row`` elements would pass ELEMENTS."""
    return min(B, max(1, ELEMENTS // max(per_row, 1)))


def _mask_op_case(r, g, case: Case) -> None:
    tags = case.tags
    B, G, S, M = _mask_shape(r, case.scale, tags)
    dtype = r.choice(DTYPES)
    sdtype = dtype if r.random() < 0.75 else r.choice(DTYPES)
    tags += [f"x:{str(dtype).removeprefix('torch.')}", f"score:{str(sdtype).removeprefix('torch.')}"]
    x = _restride(r, _x_values(r, g, (B, G, M), dtype, tags), tags, "x", expand_dims=(0, 1, 2))
    score = _restride(r, _score_values(r, g, (B, S, M), sdtype, tags), tags, "score", expand_dims=(0, 1, 2))
    k = _k_values(r, g, torch.full((B,), M, dtype=torch.int64), tags)
    seed, offset = _seed_offset(r, B * G * M)
    case.args = (x, score, k)
    case.kwargs = dict(**_fill(r, tags), seed=seed, offset=offset)
    if r.random() < 0.5:  # Triton: the split path on short rows, in small chunks
        case.blocks = dict(short_max=0, chunk=r.choice((16, 32, 64)), fill_block=r.choice((16, 64)))
        tags.append("triton:split")
    if r.random() < INVALID_RATE:
        _mask_invalid(r, case)


def _mask_invalid(r, case: Case) -> None:
    x, score, k = case.args
    B, G, M = x.shape
    bad = r.choice(("k_negative", "k_above_M", "k_wraps_int32", "offset", "fill", "k_float", "k_shape",
                    "score_shape", "score_S0", "x_int", "x_rank"))
    if bad.startswith("k_") and bad != "k_shape" and bad != "k_float" and B == 0:
        bad = "k_shape"
    case.invalid = bad
    if bad in ("k_negative", "k_above_M", "k_wraps_int32"):
        k = k.to(torch.int64 if bad == "k_wraps_int32" else k.dtype).clone()
        k[r.randrange(B)] = {"k_negative": -1, "k_above_M": M + 1, "k_wraps_int32": 2**32 + min(M, 3)}[bad]
    elif bad == "offset":
        case.kwargs["offset"] = -r.randint(1, 2**40)
    elif bad == "fill":
        case.kwargs["fill"] = r.choice(("median", "Uniform", ""))
    elif bad == "k_float":
        k = k.to(r.choice((torch.float32, torch.int16, torch.uint8)))
    elif bad == "k_shape":
        k = torch.zeros(B + 1, dtype=torch.int64)
    elif bad == "score_shape":
        score = torch.zeros(B, 1, M + 1)
    elif bad == "score_S0":
        score = torch.zeros(B, 0, M)
    elif bad == "x_int":
        x = torch.zeros(B, G, M, dtype=r.choice((torch.int32, torch.bool)))
    else:
        x = x.flatten(1)
    case.args = (x, score, k)


def _mask_public_case(r, g, case: Case) -> None:
    """smoot_ext.mask on NCHW (contiguous or channels_last), (B, T, D) (with padding lengths)
    or flat (B, D) input, per pixel or per feature, with an int or tensor k and a seed, a seed
    and offset or a generator."""
    tags, small = case.tags, case.scale == "small"
    form = r.choice(("nchw", "nchw", "btd", "btd", "flat"))
    dtype = r.choice(DTYPES)
    tags += [f"public:{form}", f"x:{str(dtype).removeprefix('torch.')}"]
    big = not small and r.random() < 0.04
    B = r.choice((1, 2)) if big else r.choice((1, 2, 3, 5) if small else (1, 2, 3, 5, 8, 17, 32))
    lengths = None
    if form == "nchw":
        C = r.choice((1, 2, 3, 4))
        H, W = (224, 224) if big else (r.randint(1, 8 if small else 40), r.randint(1, 8 if small else 40))
        B = B if big else _fit(B, C * H * W)
        shape, unit = (B, C, H, W), r.choice(("pixel", "feature"))
        x = _x_values(r, g, shape, dtype, tags)
        S = r.choice((1, C)) if unit == "pixel" else C
        score = _score_values(r, g, (B, S, H, W), dtype, tags)
        if r.random() < 0.3:
            tags.append("x:channels_last")
            x, score = (t.contiguous(memory_format=torch.channels_last) for t in (x, score))
        else:
            x = _restride(r, x, tags, "x", expand_dims=(0, 1))
            score = _restride(r, score, tags, "score", expand_dims=(0, 1))
        G, M = (C, H * W) if unit == "pixel" else (1, C * H * W)
        real = torch.full((B,), M, dtype=torch.int64)
    elif form == "btd":
        T = 70001 if big else r.randint(1, 40 if small else 100)
        D = 1 if big else r.choice((1, 2, 3, 4, 8) if not small else (1, 2, 3))
        unit = r.choice(("pixel", "feature"))
        x = _restride(r, _x_values(r, g, (B, T, D), dtype, tags), tags, "x", expand_dims=(0, 1))
        score = _score_values(r, g, (B, T, r.choice((1, D)) if unit == "pixel" else D), dtype, tags)
        score = _restride(r, score, tags, "score", expand_dims=(0, 1))
        G, M = (D, T) if unit == "pixel" else (1, T * D)
        real = torch.full((B,), T, dtype=torch.int64)
        if r.random() < 0.5:
            lengths = torch.randint(0, T + 1, (B,), generator=g)
            lengths[torch.rand(B, generator=g) < 0.3] = T
            lengths[torch.rand(B, generator=g) < 0.2] = 0
            lengths = lengths.to(r.choice((torch.int32, torch.int64)))
            real = lengths.long()
            tags.append("public:lengths")
        real = real if unit == "pixel" else real * D
    else:
        D = r.randint(1, 64 if small else 3000)
        B = _fit(B, D)
        unit, G, M = "feature", 1, D
        x = _restride(r, _x_values(r, g, (B, D), dtype, tags), tags, "x", expand_dims=(0,))
        score = _restride(r, _score_values(r, g, (B, D), dtype, tags), tags, "score", expand_dims=(0,))
        real = torch.full((B,), D, dtype=torch.int64)
    tags.append(f"unit:{unit}")
    if r.random() < 0.3 and lengths is None:
        k = r.randint(0, M)
        tags.append("k:int")
    else:
        k = _k_values(r, g, real, tags)
    kw = dict(unit=unit, **_fill(r, tags))
    seed, offset = _seed_offset(r, B * G * M)
    how = r.choice(("seed_offset", "seed", "generator"))
    tags.append(f"random:{how}")
    if how == "generator":
        kw["generator"] = seed  # a torch.Generator seeded so, made afresh for each call
    else:
        kw["seed"] = seed
        if how == "seed_offset":
            kw["offset"] = offset
    if lengths is not None:
        kw["lengths"] = lengths
    case.args, case.kwargs, case.form = (x, score, k), kw, dict(kind=form, G=G, M=M, real=real)
    if r.random() < INVALID_RATE:
        _public_invalid(r, case)


def _public_invalid(r, case: Case) -> None:
    x, score, k = case.args
    kw, B, M = case.kwargs, x.shape[0], case.form["M"]
    bad = r.choice(("k_int_above_M", "lengths_above_T", "lengths_dtype", "lengths_shape", "k_above_real",
                    "unit", "score_shape"))
    if bad.startswith("lengths") or bad == "k_above_real":
        if "lengths" not in kw or B == 0:
            bad = "k_int_above_M"
    case.invalid = bad
    if bad == "k_int_above_M":
        k = M + r.randint(1, 3)
    elif bad == "lengths_above_T":
        lengths = kw["lengths"].clone()
        lengths[r.randrange(B)] = x.shape[1] + 1
        kw["lengths"] = lengths
    elif bad == "lengths_dtype":
        kw["lengths"] = kw["lengths"].float()
    elif bad == "lengths_shape":
        kw["lengths"] = kw["lengths"][:-1]
    elif bad == "k_above_real":
        row = r.randrange(B)
        k = torch.as_tensor(k).expand(B).clone() if not isinstance(k, torch.Tensor) else k.clone()
        real = case.form["real"]
        k[row] = int(real[row]) + 1
        if k[row] > M:
            k[row] = -1
    elif bad == "unit":
        kw["unit"] = r.choice(("pixels", "channel"))
    else:  # a length of units (T of (B, T, D), else the last), not the channels (1 is valid too)
        d = 1 if case.form["kind"] == "btd" else -1
        score = score.narrow(d, 0, score.shape[d] - 1) if score.shape[d] > 1 else torch.cat([score, score], d)
    case.args = (x, score, k)


def _update_k_case(r, g, case: Case) -> None:
    tags, small = case.tags, case.scale == "small"
    odd = r.random()
    if odd < 0.05:
        kind = r.choice(("empty_batch", "wide", "tall"))
        tags.append(f"shape:{kind}")
        B, C = {"empty_batch": (0, r.randint(1, 10)),
                "wide": (r.randint(1, 2), 300 if small else r.choice((65537, 70001))),
                "tall": (60 if small else 70001, r.randint(1, 3))}[kind]
    elif small:
        B, C = r.choice((1, 2, 3, 5, 8, 16)), r.choice((1, 2, 3, 5, 10, 31, 100, r.randint(1, 200)))
    else:
        B = r.choice((1, 2, 3, 7, 16, 37, 64, 256, r.randint(1, 300)))
        C = r.choice((1, 2, 3, 5, 10, 31, 100, 1000, r.randint(1, 2000)))
    dtype = r.choice(DTYPES)
    mdtype = dtype if r.random() < 0.75 else r.choice(DTYPES)
    kind = r.choices(("perturbed", "independent", "ties", "equal", "extreme", "specials"),
                     weights=(35, 15, 15, 8, 12, 15))[0]
    tags += [f"logits:{kind}", f"logits:{str(dtype).removeprefix('torch.')}",
             f"logits_masked:{str(mdtype).removeprefix('torch.')}"]
    scale = r.choice((0.1, 1.0, 3.0, 30.0, 1e4)) if kind != "extreme" else r.choice((88.0, 1e4, 1e30))
    logits = torch.randn(B, C, generator=g, dtype=torch.float64) * scale
    if kind in ("perturbed", "extreme", "specials"):
        masked = logits + torch.randn(B, C, generator=g, dtype=torch.float64) * scale / 3
    elif kind == "ties":
        logits = torch.randint(0, 3, (B, C), generator=g).double()
        masked = torch.randint(0, 3, (B, C), generator=g).double()
    elif kind == "equal":
        logits = torch.zeros(B, C, dtype=torch.float64)
        masked = torch.randn(B, C, generator=g, dtype=torch.float64)
    else:
        masked = torch.randn(B, C, generator=g, dtype=torch.float64) * scale
    if kind == "specials":
        logits = _sprinkle(r, g, logits, _specials(r, dtype, tags, "logits"))
        masked = _sprinkle(r, g, masked, _specials(r, mdtype, tags, "logits_masked"))
    logits = _restride(r, logits.to(dtype), tags, "logits", expand_dims=(0,))
    masked = _restride(r, masked.to(mdtype), tags, "logits_masked", expand_dims=(0,))
    kdtype = r.choice((torch.int32, torch.int64))
    wide = 2**30 if kdtype == torch.int32 else 2**61
    bounds = r.choice(("usual", "usual", "equal", "negative", "wide", "beyond_k_dtype"))
    tags += [f"k:{str(kdtype).removeprefix('torch.')}", f"kbounds:{bounds}"]
    if bounds == "wide":
        kmin, kmax = sorted((r.randint(-wide, wide), r.randint(-wide, wide)))
        k = torch.randint(-wide, wide, (B,), generator=g)
    elif bounds == "beyond_k_dtype":  # int32 k near its ends, bounds past them: k_new wraps (alike everywhere)
        kmin, kmax = -r.choice((2**31, 2**40)), r.choice((2**31, 2**40))
        k = torch.randint(2**31 - 100, 2**31, (B,), generator=g) * torch.where(torch.rand(B, generator=g) < 0.5, -1, 1)
    else:
        kmin, kmax = sorted((r.randint(0, 1000), r.randint(0, 1000)))
        kmin, kmax = {"equal": (kmin, kmin), "negative": (kmin - 1000, kmax - 1000)}.get(bounds, (kmin, kmax))
        k = torch.randint(kmin - 50, kmax + 50, (B,), generator=g)
    k = _restride(r, k.to(kdtype), tags, "k")
    kw = dict(alpha=r.choice((0.0, 1.0, -0.0, 0.5, 0.7, 0.8, 0.95, r.random())),
              mu=r.choice((0.0, 1.0, 10.0, 25.0, -10.0, 1e-3, 1e19, 1e30, 3e38, -1e30, r.uniform(-100, 100))),
              n=r.choice((1, 2, 5, 5, C, C + 3, r.randint(1, C + 5), 2**31 - 1, 2**40)),
              kmin=kmin, kmax=kmax, rounding=r.choice(ROUNDINGS))
    tags.append(f"rounding:{kw['rounding']}")
    case.args, case.kwargs = (logits, masked, k), kw
    if r.random() < INVALID_RATE:
        _update_k_invalid(r, case)


def _update_k_invalid(r, case: Case) -> None:
    logits, masked, k = case.args
    kw, (B, C) = case.kwargs, logits.shape
    bad = r.choice(("kmin_above_kmax", "alpha", "mu", "n", "rounding", "no_classes", "k_shape",
                    "masked_shape", "k_float", "logits_int"))
    case.invalid = bad
    if bad == "kmin_above_kmax":
        kw["kmin"], kw["kmax"] = kw["kmax"] + 1, kw["kmax"]
    elif bad == "alpha":
        kw["alpha"] = r.choice((math.nan, math.inf, -1e-300, 1.0000001, 2.0, -0.5))
    elif bad == "mu":
        kw["mu"] = r.choice((math.nan, math.inf, -math.inf))
    elif bad == "n":
        kw["n"] = r.choice((0, -1, -2**40))
    elif bad == "rounding":
        kw["rounding"] = r.choice(("round", "Floor", ""))
    elif bad == "no_classes":
        logits, masked = torch.zeros(B, 0), torch.zeros(B, 0)
    elif bad == "k_shape":
        k = torch.zeros(B + 1, dtype=k.dtype)
    elif bad == "masked_shape":
        masked = torch.zeros(B, C + 1)
    elif bad == "k_float":
        k = k.double()
    else:
        logits = logits.to(r.choice((torch.int64, torch.int32)))
    case.args = (logits, masked, k)


def make_case(seed: int, scale: str = "full") -> Case:
    """The case of ``seed`` (any int) at ``scale`` ("full", or "small" for interpreted Triton)."""
    if scale not in SCALES:
        raise ValueError(f"scale: expected one of {SCALES}, got {scale!r}")
    r = random.Random(f"{scale}:{seed}")
    g = torch.Generator().manual_seed(r.getrandbits(63))
    op = r.choices(("mask", "update_k"), weights=(70, 30))[0]
    api = "public" if r.random() < (0.3 if op == "mask" else 0.15) else "op"
    case = Case(seed, scale, op, api, (), {}, tags=[f"{op}/{api}"])
    if op == "update_k":
        _update_k_case(r, g, case)
    elif api == "op":
        _mask_op_case(r, g, case)
    else:
        _mask_public_case(r, g, case)
    if case.invalid:
        case.tags.append(f"invalid:{case.invalid}")
    return case


# ---------------------------------------------------------------------------- running and comparing

@dataclasses.dataclass
class Outcome:
    """What one backend did with one case: "ok" (the reference's bits), "bits" (within SPEC,
    not the reference's bits; ``what`` says where), "finding", "known" (``what``: which of
    KNOWN) or "skipped"."""
    backend: str
    status: str
    what: str = ""


def backends_for(names: str) -> list[cases.Backend]:
    """Backends named by ``names`` (comma-separated: "all", an op-independent backend name such
    as "cpu", or one knob setting such as "cpu-baseline") that run here, as mask backends (the
    update_k cases take the same name without the knob)."""
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    found = []
    for name in cases.KERNELS:
        _, settings = cases.KNOBS["mask"].get(name, (None, (None,)))
        for setting in settings:
            b = cases.Backend(name, "mask", setting)
            if ("all" in wanted or name in wanted or str(b) in wanted) and cases.why_missing(name, "mask") is None:
                found.append(b)
    unknown = set(wanted) - {"all"} - {b.name for b in found} - {str(b) for b in found}
    for name in sorted(unknown):
        why = cases.why_missing(name.split("-")[0], "mask") if name.split("-")[0] in cases.KERNELS else None
        raise SystemExit(f"--backends: {name!r} " + (f"cannot run here ({why})" if why else "is not a backend"))
    return found


def scale_of(backend: cases.Backend) -> str:
    return "small" if backend.interpreted else "full"


@contextlib.contextmanager
def _threads(n: int):
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


@contextlib.contextmanager
def _knob(backend: cases.Backend, op: str):
    """The backend's knob (an environment variable its kernels read on every call) set."""
    var = cases.KNOBS[op].get(backend.name, (None,))[0]
    old = os.environ.get(var) if var else None
    if var and backend.setting is not None:
        os.environ[var] = backend.setting
    try:
        yield
    finally:
        if var and old is None:
            os.environ.pop(var, None)
        elif var:
            os.environ[var] = old


def _on(t, device):
    return t.to(device) if isinstance(t, torch.Tensor) else t


def _call(case: Case, backend: cases.Backend | None):
    """The case on ``backend`` (None: the reference's public API), outputs on the CPU, and the
    state of the generator it drew from (public mask cases with a generator)."""
    name = "reference" if backend is None else backend.name
    device = "cpu" if backend is None else backend.device
    args = [_on(t, device) for t in case.args]
    kw = {k: _on(v, device) for k, v in case.kwargs.items()}
    gen = None
    if "generator" in kw:
        gen = kw["generator"] = torch.Generator().manual_seed(kw["generator"] & (2**63 - 1))
    if case.api == "public":
        out = getattr(smoot_ext, case.op)(*args, backend=name, **kw)
    else:
        out = cases.Runner(dataclasses.replace(backend, op=case.op), case.blocks)(*args, **kw)
    if device == "cuda":
        torch.cuda.synchronize()
    return tuple(t.cpu() for t in out), (gen.get_state() if gen is not None else None)


def _op_layout(case: Case, t: torch.Tensor) -> torch.Tensor:
    """A public mask case's x, score or out as the op's (B, G, M) (docs/SPEC.md, Layout),
    written here from the layout's definition rather than taken from smoot_ext.ops."""
    kind, B = case.form["kind"], t.shape[0]
    if case.kwargs["unit"] == "feature":
        return t.reshape(B, 1, -1)
    if kind == "nchw":
        return t.reshape(B, t.shape[1], -1)
    return t.transpose(1, 2)


def _mask_expected(case: Case):
    """(oracle arguments, the reference's (out, mask), generator state after) of a valid case:
    the op's layout, the reference op (mask_padded with lengths)."""
    x, score, k = case.args
    kw = {n: case.kwargs[n] for n in ("abs", "fill", "value")}
    if case.api == "op":
        kw.update(seed=case.kwargs["seed"], offset=case.kwargs["offset"])
        args = dict(x=x, score=score, k=k, real_units=None, kw=kw)
        return args, reference.mask(x, score, k, **kw), None
    B, M = x.shape[0], case.form["M"]
    k = k if isinstance(k, torch.Tensor) else torch.full((B,), k, dtype=torch.int64)
    state = None
    if "generator" in case.kwargs:
        gen = torch.Generator().manual_seed(case.kwargs["generator"] & (2**63 - 1))
        kw["seed"], kw["offset"] = ops._draw_seed_offset(gen, B * case.form["G"] * M)
        state = gen.get_state()
    else:
        kw.update(seed=case.kwargs["seed"], offset=case.kwargs.get("offset", 0))
    x3, s3 = _op_layout(case, x), _op_layout(case, score)
    real = case.form["real"] if "lengths" in case.kwargs else None
    ref = reference.mask(x3, s3, k, **kw) if real is None else reference.mask_padded(x3, s3, k, real, **kw)
    return dict(x=x3, score=s3, k=k, real_units=real, kw=kw), ref, state


def _bits(t: torch.Tensor) -> torch.Tensor:
    return t.view(cases._INT_VIEW[t.dtype]) if t.is_floating_point() else t


def _unchanged(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and torch.equal(_bits(a), _bits(b))


def _same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Bit for bit, but any NaN equals any NaN (a NaN's sign and payload carry nothing)."""
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    same = _bits(a) == _bits(b)
    if a.is_floating_point():
        same |= torch.isnan(a) & torch.isnan(b)
    return bool(same.all())


def _compare_mask(case: Case, got, expected) -> str | None:
    """None if ``got`` is the reference's every bit, else where it differs (SPEC's tolerances
    hold: checked before, by cases.assert_matches_reference)."""
    out, (args, (ref_out, _), _) = got[0], expected
    out3 = out if case.api == "op" else _op_layout(case, out)
    if _same_bits(out3, ref_out):
        return None
    dt = str(args["x"].dtype).removeprefix("torch.")
    return f"mask: fill bits ({args['kw']['fill']}, {dt})"


def _check_mask(case: Case, got, expected) -> None:
    """SPEC's demands of a mask result (AssertionError with what fails)."""
    (out, masked), (args, ref, _) = got, expected
    x = case.args[0]
    assert out.shape == x.shape and out.dtype == x.dtype, \
        f"out: {out.dtype}{tuple(out.shape)} for x {x.dtype}{tuple(x.shape)}"
    if case.api == "public":
        B = x.shape[0]
        want = x.shape if case.kwargs["unit"] == "feature" else x.shape[:1] + x.shape[2:] \
            if case.form["kind"] == "nchw" else (B, x.shape[1])
        assert masked.shape == want, f"mask: shape {tuple(masked.shape)}, expected {tuple(want)}"
        out, masked = _op_layout(case, out), masked.reshape(B, -1)
    cases.assert_matches_reference(out, masked, args["x"], args["score"], args["k"], real_units=args["real_units"],
                                   ref=ref, **args["kw"])


def _check_update_k(case: Case, got, ref) -> None:
    """SPEC's demands of an update_k result: delta within 1e-6 of the reference's; k_new is SPEC
    step 4 of the backend's own delta exactly (test_update_k.expected_k), and the reference's
    but where the float32 product mu * delta is within 1e-5 of an integer (SPEC's exception, in
    the float32 SPEC names: every product of 2**23 or more is an integer)."""
    (k_new, delta), (ref_k, ref_delta), k, kw = got, ref, case.args[2], case.kwargs
    assert k_new.dtype == k.dtype and k_new.shape == k.shape, f"k_new: {k_new.dtype}{tuple(k_new.shape)}"
    assert delta.dtype == torch.float32 and delta.shape == k.shape, f"delta: {delta.dtype}{tuple(delta.shape)}"
    torch.testing.assert_close(delta, ref_delta, rtol=0, atol=1e-6, equal_nan=True)
    step = expected_k(k, delta, mu=kw["mu"], kmin=kw["kmin"], kmax=kw["kmax"], rounding=kw["rounding"])
    own = torch.tensor(step, dtype=torch.int64).to(k.dtype)
    bad = (k_new != own).nonzero().flatten()
    assert bad.numel() == 0, f"k_new is not SPEC step 4 of its own delta at rows {bad[:5].tolist()}"
    t = (torch.tensor(kw["mu"], dtype=torch.float32) * ref_delta).double()
    bad = ((k_new != ref_k) & ~((t - t.round()).abs() < 1e-5)).nonzero().flatten()
    assert bad.numel() == 0, f"k_new differs from the reference's at rows {bad[:5].tolist()}"


def _expected(case: Case):
    """("ok", what the comparison needs) or ("error", the exception) from the reference."""
    try:
        if case.invalid and case.api == "public":
            _call(case, None)
        elif case.op == "mask":
            return "ok", _mask_expected(case)
        else:
            return "ok", reference.update_k(*case.args, **case.kwargs)
    except Exception as e:  # noqa: BLE001 (any error of the reference is the expected one)
        return "error", e
    return "ok", None


def _snapshot(case: Case) -> list:
    return [t.clone() for t in list(case.args) + list(case.kwargs.values()) if isinstance(t, torch.Tensor)]


def _run_one(case: Case, backend: cases.Backend, expected) -> Outcome:
    name = str(backend)
    if backend.device == "cuda" and case.invalid and case.invalid.startswith(("k_negative", "k_above", "k_wraps")):
        return Outcome(name, "skipped", "k's values on a GPU are checked by a device-side assert")
    before = _snapshot(case)
    try:
        with _knob(backend, case.op), _threads(KERNEL_THREADS):
            got, state = _call(case, backend)
        error = None
    except pytest.skip.Exception as e:
        return Outcome(name, "skipped", str(e))
    except Exception as e:  # noqa: BLE001 (every error is compared with the reference's)
        error = e
    after = _snapshot(case)
    if not all(_unchanged(a, b) for a, b in zip(before, after)):
        return Outcome(name, "finding", "an input tensor was written to")
    kind, exp = expected
    if kind == "error" or error is not None:
        if kind != "error":
            return Outcome(name, "finding", f"raised where the reference did not: {type(error).__name__}: {error}")
        if error is None:
            return Outcome(name, "finding", f"no error where the reference raised {type(exp).__name__}: {exp}")
        if type(error) is not type(exp) or str(error) != str(exp):
            return Outcome(name, "finding", f"error {type(error).__name__}: {error!s} where the reference raised "
                                            f"{type(exp).__name__}: {exp!s}")
        return Outcome(name, "ok")
    if case.invalid:
        return Outcome(name, "finding", f"reference accepted a case drawn to be invalid ({case.invalid})")
    try:
        if case.op == "mask":
            _check_mask(case, got, exp)
            assert state is None or torch.equal(state, exp[2]), "the generator was not advanced as the reference's"
            bits = _compare_mask(case, got, exp)
        else:
            _check_update_k(case, got, exp)
            bits = None if all(_same_bits(a, b) for a, b in zip(got, exp)) else \
                "update_k: " + ("delta" if _same_bits(got[0], exp[0]) else "k_new")
    except AssertionError as e:
        return Outcome(name, "finding", "SPEC: " + " | ".join(str(e).splitlines()[:4]))
    if bits is None:
        return Outcome(name, "ok")
    return Outcome(name, "bits", bits)


def _bf16_subnormals(case: Case) -> bool:
    return any(isinstance(t, torch.Tensor) and t.dtype == torch.bfloat16
               and bool(((t != 0) & (t.abs() < torch.finfo(t.dtype).tiny)).any()) for t in case.args)


def _known(case: Case, o: Outcome) -> str | None:
    """The KNOWN finding that ``o`` (a finding, or a bit difference for negative_zero_value) is."""
    kw = case.kwargs
    constant = case.op == "mask" and kw.get("fill") == "constant"
    if constant and kw["value"] == 0 and math.copysign(1.0, kw["value"]) < 0 and "fill bits (constant" in o.what:
        return "negative_zero_value"
    if o.status != "finding":
        return None
    if constant and o.backend == "reference" and "cannot be converted to type" in o.what:
        return "value_beyond_dtype"
    x = case.args[0]
    if kw.get("fill") == "mean" and x.is_floating_point() and bool((x.isfinite() & (x.abs() > 1e19)).any()):
        return "mean_summation_order"
    if o.backend.startswith("triton") and os.environ.get("TRITON_INTERPRET") == "1" and _bf16_subnormals(case):
        return "interpreter_bf16_subnormal"
    return None


def run_case(case: Case, backends: list[cases.Backend], strict: bool = False) -> list[Outcome]:
    """``case`` on each backend, compared with the reference; bit differences are findings for
    BIT_EXACT backends or with ``strict``; findings and bit differences that are KNOWN have
    status "known"."""
    with _threads(1):
        return _run_case(case, backends, strict)


def _run_case(case: Case, backends: list[cases.Backend], strict: bool) -> list[Outcome]:
    expected = _expected(case)
    if expected[0] == "error" and not case.invalid:
        e = expected[1]
        outcomes = [Outcome("reference", "finding", f"the reference raised on a valid case: {type(e).__name__}: {e}")]
    else:
        outcomes = []
        for b in backends:
            o = _run_one(case, b, expected)
            if o.status == "bits" and (strict or b.name in BIT_EXACT[case.op]):
                o = Outcome(o.backend, "finding", f"not the reference's bits (SPEC's tolerances hold): {o.what}")
            outcomes.append(o)
    return [Outcome(o.backend, "known", _known(case, o)) if o.status in ("finding", "bits") and _known(case, o)
            else o for o in outcomes]


# ------------------------------------------------------------------------------------ the long run

class Tally:
    """Cases per backend, findings, bit differences by kind and coverage by tag."""

    def __init__(self):
        self.cases = collections.Counter()         # per backend: cases run (not skipped)
        self.errors = collections.Counter()        # per backend: invalid cases (errors compared)
        self.generated = collections.Counter()     # per scale
        self.bits = collections.defaultdict(collections.Counter)
        self.tags = collections.Counter()
        self.known = collections.defaultdict(collections.Counter)
        self.findings: list[dict] = []

    def add(self, case: Case, outcomes: list[Outcome]) -> list[dict]:
        self.generated[case.scale] += 1
        self.tags.update(case.tags)
        new = []
        for o in outcomes:
            if o.status == "skipped":
                continue
            self.cases[o.backend] += 1
            self.errors[o.backend] += bool(case.invalid)
            if o.status in ("bits", "known"):
                (self.bits if o.status == "bits" else self.known)[o.backend][o.what] += 1
            if o.status == "finding":
                new.append(dict(backend=o.backend, seed=case.seed, scale=case.scale, what=o.what,
                                case=case.describe(), reproducer=case.reproducer(o.backend)))
        self.findings += new
        return new

    def summary(self, seconds: float, args) -> dict:
        return dict(seconds=round(seconds, 1), first_seed=args.seed, strict=args.strict,
                    cases_generated=dict(self.generated), cases_per_backend=dict(self.cases),
                    error_cases_per_backend=dict(self.errors), findings=self.findings,
                    bit_differences={b: dict(c) for b, c in self.bits.items()},
                    known_findings={b: dict(c) for b, c in self.known.items()},
                    coverage=dict(sorted(self.tags.items())), torch=torch.__version__)


def _finding_text(f: dict) -> str:
    return (f"FINDING [{f['backend']}] case {f['seed']} ({f['scale']}): {f['what']}\n"
            f"  {f['case']}\n  reproduce: {f['reproducer']}")


def main(argv=None) -> int:
    global KERNEL_THREADS
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cases", type=int, help="cases per scale (each backend group), default 100 "
                                             "without --minutes")
    p.add_argument("--minutes", type=float, help="run until this much wall time has passed")
    p.add_argument("--backends", default="all", help="comma-separated: all, cpu, cuda, triton, or a knob "
                                                     "setting (cpu-baseline, cpu-auto, cuda-row, cuda-split)")
    p.add_argument("--seed", type=int, default=100_000, help="the first case seed (cases take seed, seed + 1, "
                                                               "...; tests/test_fuzz.py runs 0, 1, ...)")
    p.add_argument("--case", type=int, help="run the one case of this seed (the reproducer)")
    p.add_argument("--scale", choices=SCALES, help="with --case: the case's scale (default: each backend's)")
    p.add_argument("--strict", action="store_true", help="every bit difference is a finding")
    p.add_argument("--threads", type=int, default=KERNEL_THREADS, help="torch threads of the backends' calls "
                                                                       "(default: torch's, %(default)s)")
    p.add_argument("--json", type=Path, help="write a summary here")
    p.add_argument("-v", "--verbose", action="store_true", help="print every case")
    args = p.parse_args(argv)
    KERNEL_THREADS = args.threads
    found = backends_for(args.backends)
    if not found:
        raise SystemExit(f"--backends {args.backends}: none of them runs here")
    groups: dict[str, list] = {}
    for b in found:
        groups.setdefault(args.scale if args.case is not None and args.scale else scale_of(b), []).append(b)
    if args.case is not None:
        args.seed, args.cases, args.minutes = args.case, 1, None
    elif args.cases is None and args.minutes is None:
        args.cases = 100
    from tqdm import tqdm

    tally, spent = Tally(), {s: 0.0 for s in groups}
    done = {s: 0 for s in groups}
    start = time.monotonic()
    deadline = start + 60 * args.minutes if args.minutes else math.inf
    total = args.cases * len(groups) if args.cases else None
    print(f"backends: {', '.join(f'{s}: ' + ' '.join(map(str, bs)) for s, bs in groups.items())}; "
          f"first seed {args.seed}" + (f"; {args.minutes} min" if args.minutes else ""), flush=True)
    with tqdm(total=total, unit="case", dynamic_ncols=True, mininterval=2.0) as bar:
        while time.monotonic() < deadline:
            open_ = [s for s in groups if args.cases is None or done[s] < args.cases]
            if not open_:
                break
            scale = min(open_, key=lambda s: spent[s])  # the groups share the time alike
            t0 = time.monotonic()
            with _threads(1):
                case = make_case(args.seed + done[scale], scale)
            outcomes = run_case(case, groups[scale], strict=args.strict)
            spent[scale] += time.monotonic() - t0
            done[scale] += 1
            if args.verbose:
                bar.write(f"case {case.seed} ({scale}): {case.describe()}\n  "
                          + "; ".join(f"{o.backend}: {o.status} {o.what}".rstrip() for o in outcomes))
            for f in tally.add(case, outcomes):
                bar.write(_finding_text(f))
            bar.update()
            bar.set_postfix(findings=len(tally.findings), refresh=False)
    seconds = time.monotonic() - start
    summary = tally.summary(seconds, args)
    print(f"\n{sum(tally.generated.values())} cases in {seconds:.0f} s "
          f"({', '.join(f'{s}: {n}' for s, n in tally.generated.items())})")
    for b, n in sorted(tally.cases.items()):
        print(f"  {b}: {n} cases ({tally.errors[b]} of them errors compared)")
    for b, kinds in sorted(tally.bits.items()):
        print(f"  {b}: within SPEC, not the reference's bits: "
              + ", ".join(f"{w}: {n}" for w, n in kinds.most_common()))
    for b, kinds in sorted(tally.known.items()):
        print(f"  {b}: known findings: " + ", ".join(f"{w}: {n}" for w, n in kinds.most_common()))
    if args.verbose or args.json:
        print("coverage: " + ", ".join(f"{t} {n}" for t, n in sorted(tally.tags.items())))
    print(f"findings: {len(tally.findings)}")
    for f in tally.findings:
        print(_finding_text(f))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=1) + "\n")
    return 1 if tally.findings else 0


if __name__ == "__main__":
    sys.exit(main())
