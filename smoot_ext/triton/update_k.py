"""``smoot::update_k_triton``: docs/SPEC.md ``smoot::update_k`` as one Triton kernel, a program per row.

Exact arithmetic, as the CUDA kernel's: libdevice ``expf`` (``tl.exp`` would be a bare
``ex2.approx``), round-to-nearest division (``/`` would be ``div.full``) and no contraction
(``enable_fp_fusion=False``: ``alpha*delta1 + beta*delta2`` would become one FMA).
tests/test_triton_compile.py reads the PTX for all three.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch.library import triton_op, wrap_triton
from triton.language.extra import libdevice
from triton.runtime.interpreter import InterpretedFunction

from .. import _autograd, checks
from ._schema import schema_of

INF = tl.constexpr(float("inf"))
STEP_BOUND = tl.constexpr(2.0**62)  # SPEC: |step| <= 2**62, exact in float32 and int64
# Options of every launch (and of the compile-time checks): no multiply-add contraction, and
# libdevice's expf without flush-to-zero, as nvcc compiles the CUDA kernel's expf by default.
LAUNCH_OPTIONS = {"num_warps": 4, "enable_fp_fusion": False, "enable_reflect_ftz": False}


@triton.jit
def _softmax(ptr, cols, inb, LIBDEVICE: tl.constexpr):
    z = tl.load(ptr + cols, mask=inb, other=-INF).to(tl.float32)
    if LIBDEVICE:
        e = libdevice.exp(z - tl.max(z, 0))
    else:  # the interpreter (numpy's exp) has no libdevice
        e = tl.exp(z - tl.max(z, 0))
    e = tl.where(inb, e, 0.0)
    return tl.div_rn(e, tl.sum(e, 0))


@triton.jit
def _bounded_step(t):
    """int64 step of the rounded float32 t, in [-2**62, 2**62], NaN to -2**62: the float -> int
    cast is undefined on a GPU for NaN and out-of-range values, so none reaches it."""
    t = tl.minimum(tl.maximum(t, -STEP_BOUND), STEP_BOUND)
    return tl.where(t != t, -STEP_BOUND, t).to(tl.int64)


@triton.jit
def _update_k_kernel(logits_ptr, masked_ptr, k_ptr, k_new_ptr, delta_ptr, C, n_top,
                     alpha, one_minus_alpha, mu, kmin, kmax, BLOCK: tl.constexpr,
                     TRUNC: tl.constexpr, LIBDEVICE: tl.constexpr):
    b = tl.program_id(0).to(tl.int64)
    cols = tl.arange(0, BLOCK)
    inb = cols < C
    p = _softmax(logits_ptr + b * C, cols, inb, LIBDEVICE)
    q = _softmax(masked_ptr + b * C, cols, inb, LIBDEVICE)
    # Rank by p descending, ties to the lower class, NaN first (as torch.sort descending):
    # p lies in [0, 1], so 2 stands above every probability and -1 below.
    order = tl.where(inb, tl.where(p != p, 2.0, p), -1.0)
    diff = q - p
    delta1 = tl.zeros((), dtype=tl.float32)
    rest = tl.zeros((), dtype=tl.float32)
    for i in range(n_top):
        best = tl.max(order, 0)
        c = tl.min(tl.where(order == best, cols, BLOCK), 0)
        d = tl.sum(tl.where(cols == c, diff, 0.0), 0)
        if i == 0:
            delta1 = d
        else:
            rest += d
        order = tl.where(cols == c, -1.0, order)
    delta2 = tl.div_rn(rest, tl.maximum(n_top - 1, 1).to(tl.float32))  # rest = 0 when n' = 1
    delta = alpha * delta1 + one_minus_alpha * delta2
    t = mu * delta
    if TRUNC:
        t = tl.where(t < 0, tl.ceil(t), tl.floor(t))
    else:
        t = tl.floor(t)
    k_new = tl.minimum(tl.maximum(tl.load(k_ptr + b).to(tl.int64) + _bounded_step(t), kmin), kmax)
    tl.store(k_new_ptr + b, k_new.to(k_new_ptr.dtype.element_ty))
    tl.store(delta_ptr + b, delta)


INTERPRETED = isinstance(_update_k_kernel, InterpretedFunction)


def launch(logits: torch.Tensor, logits_masked: torch.Tensor, k: torch.Tensor, *, alpha: float,
           mu: float, n: int, kmin: int, kmax: int, rounding: str = "floor"):
    """The op's body."""
    B, C = checks.check_update_k(logits, logits_masked, k, alpha=alpha, mu=mu, n=n, kmin=kmin,
                                 kmax=kmax, rounding=rounding)
    k = k.contiguous()  # the kernel reads k[b] at b: a strided or expanded k would give other rows'
    k_new = torch.empty_like(k)
    delta = torch.empty((B,), dtype=torch.float32, device=logits.device)
    if B:
        wrap_triton(_update_k_kernel)[(B,)](
            logits.contiguous(), logits_masked.contiguous(), k, k_new, delta, C, min(n, C),
            alpha, 1.0 - alpha, mu, kmin, kmax, BLOCK=triton.next_power_of_2(C),
            TRUNC=rounding == "trunc", LIBDEVICE=not INTERPRETED, **LAUNCH_OPTIONS)
    return k_new, delta


@triton_op("smoot::update_k_triton", mutates_args=(), schema=schema_of("update_k"))
def update_k_triton(logits: torch.Tensor, logits_masked: torch.Tensor, k: torch.Tensor, *,
                    alpha: float, mu: float, n: int, kmin: int, kmax: int,
                    rounding: str = "floor") -> tuple[torch.Tensor, torch.Tensor]:
    return launch(logits, logits_masked, k, alpha=alpha, mu=mu, n=n, kmin=kmin, kmax=kmax,
                  rounding=rounding)


# As for mask_triton: tracing the op itself for fake tensors needs compiled kernels.
if INTERPRETED:
    update_k_triton.register_fake(_autograd.fake_update_k)
