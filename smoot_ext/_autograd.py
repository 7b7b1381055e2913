"""Autograd and fake (meta) rules shared by every ``mask``-shaped op (C++ and Triton)."""
from __future__ import annotations

import torch

from . import checks


def _setup_context(ctx, inputs, keyword_only_inputs, output):
    ctx.save_for_backward(output[1])


def _backward(ctx, grad_out, _grad_mask):
    # SPEC step 7: identity on kept units, zero on masked ones; nothing to score, k or the fill.
    (masked,) = ctx.saved_tensors
    return grad_out.masked_fill(masked.unsqueeze(1), 0), None, None


def setup_mask_autograd(op: str) -> None:
    torch.library.register_autograd(op, _backward, setup_context=_setup_context)


# The fake rules check what the kernels check, all but the values of k (fake tensors have none):
# under torch.compile a bad call fails at trace time with the kernels' own message.
def fake_mask(x, score, k, *, abs=True, fill="uniform", value=0.0, seed=0, offset=0):
    B, _, _, M = checks.check_mask(x, score, k, fill=fill, offset=offset)
    return torch.empty_like(x), x.new_empty((B, M), dtype=torch.bool)


def fake_update_k(logits, logits_masked, k, *, alpha, mu, n, kmin, kmax, rounding="floor"):
    B, _ = checks.check_update_k(logits, logits_masked, k, alpha=alpha, mu=mu, n=n, kmin=kmin, kmax=kmax,
                                 rounding=rounding)
    return torch.empty_like(k), logits.new_empty((B,), dtype=torch.float32)
