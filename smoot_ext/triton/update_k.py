"""``smoot::update_k_triton``: docs/SPEC.md ``smoot::update_k`` as one Triton kernel, a program per row."""
from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch.library import triton_op, wrap_triton
from triton.runtime.interpreter import InterpretedFunction

from .. import _autograd, checks
from ._schema import schema_of

INF = tl.constexpr(float("inf"))


@triton.jit
def _softmax(ptr, cols, inb):
    z = tl.load(ptr + cols, mask=inb, other=-INF).to(tl.float32)
    e = tl.exp(z - tl.max(z, 0))
    e = tl.where(inb, e, 0.0)
    return e / tl.sum(e, 0)


@triton.jit
def _update_k_kernel(logits_ptr, masked_ptr, k_ptr, k_new_ptr, delta_ptr, C, n_top,
                     alpha, one_minus_alpha, mu, kmin, kmax, BLOCK: tl.constexpr,
                     TRUNC: tl.constexpr):
    b = tl.program_id(0).to(tl.int64)
    cols = tl.arange(0, BLOCK)
    inb = cols < C
    p = _softmax(logits_ptr + b * C, cols, inb)
    q = _softmax(masked_ptr + b * C, cols, inb)
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
    delta2 = rest / tl.maximum(n_top - 1, 1).to(tl.float32)  # rest = 0 when n' = 1
    delta = alpha * delta1 + one_minus_alpha * delta2
    t = mu * delta
    if TRUNC:
        t = tl.where(t < 0, tl.ceil(t), tl.floor(t))
    else:
        t = tl.floor(t)
    step = t.to(tl.int64)
    k_new = tl.minimum(tl.maximum(tl.load(k_ptr + b).to(tl.int64) + step, kmin), kmax)
    tl.store(k_new_ptr + b, k_new.to(k_new_ptr.dtype.element_ty))
    tl.store(delta_ptr + b, delta)


@triton_op("smoot::update_k_triton", mutates_args=(), schema=schema_of("update_k"))
def update_k_triton(logits: torch.Tensor, logits_masked: torch.Tensor, k: torch.Tensor, *,
                    alpha: float, mu: float, n: int, kmin: int, kmax: int,
                    rounding: str = "floor") -> tuple[torch.Tensor, torch.Tensor]:
    B, C = checks.check_update_k(logits, logits_masked, k, alpha=alpha, mu=mu, n=n, kmin=kmin,
                                 kmax=kmax, rounding=rounding)
    k_new = torch.empty_like(k)
    delta = torch.empty((B,), dtype=torch.float32, device=logits.device)
    if B:
        wrap_triton(_update_k_kernel)[(B,)](
            logits.contiguous(), logits_masked.contiguous(), k, k_new, delta, C, min(n, C),
            alpha, 1.0 - alpha, mu, kmin, kmax, BLOCK=triton.next_power_of_2(C),
            TRUNC=rounding == "trunc")
    return k_new, delta


# As for mask_triton: tracing the op itself for fake tensors needs compiled kernels.
if isinstance(_update_k_kernel, InterpretedFunction):
    update_k_triton.register_fake(_autograd.fake_update_k)
