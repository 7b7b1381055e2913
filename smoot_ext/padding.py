"""Padded rows on the unchanged op: ``smoot_ext.mask(..., lengths=)`` (docs/SPEC.md, Padding).

Row b of the op's (B, G, M) layout has ``n[b]`` real units, the first ones; the rest are padding.
Padding is never masked, never counted in k and never in the fill's range or mean. Every backend
gets this from its own ``smoot::mask``, untouched (the CUDA kernels cannot change without a GPU
to test them), by transforming its inputs:

1. padding scores become NaN: NaN ranks last and ties go to the lower index, so with
   ``k[b] <= n[b]`` the selection is the first k[b] of the real units' own order;
2. for the ``"uniform"`` and ``"mean"`` fills a first call (``fill="constant"``) gives that
   selection; padding values then become the mean of the kept real units (of all real units
   where every one is masked, with k raised to M so the op's range is over all units). A value
   inside the kept range moves neither its min nor its max, so the uniform fill is exact; the
   mean moves by rounding only (within SPEC's 1e-5);
3. padding units come back as they were, and the returned mask is False there.
"""
from __future__ import annotations

import torch

from .checks import MASK_OP, _index_dtype, check_per_row


def check_lengths(lengths, B: int, T: int, device: torch.device) -> torch.Tensor:
    """``lengths``: a (B,) int tensor on x's device with 0 <= lengths[b] <= T."""
    if not isinstance(lengths, torch.Tensor):
        raise TypeError(f"{MASK_OP}: lengths: expected a ({B},) integer tensor, got {type(lengths).__name__}")
    _index_dtype(MASK_OP, "lengths", lengths)
    if lengths.shape != (B,):
        raise ValueError(f"{MASK_OP}: lengths: expected shape ({B},), got {tuple(lengths.shape)}")
    if lengths.device != device:
        raise ValueError(f"{MASK_OP}: lengths: expected a tensor on x's device {device}, got one on "
                         f"{lengths.device}")
    check_per_row(MASK_OP, "lengths", (lengths >= 0) & (lengths <= T), f"expected 0 <= lengths[b] <= T = {T}",
                  lambda b: f"lengths[{b}] = {int(lengths[b])}")
    return lengths


def check_k_within(k: torch.Tensor, n: torch.Tensor) -> None:
    """k[b] <= n[b], the real units of row b (k's own range is the op's check)."""
    check_per_row(MASK_OP, "k", k <= n, "expected k[b] <= the real units of row b",
                  lambda b: f"k[{b}] = {int(k[b])} with {int(n[b])} real units")


def mask_padded(op, x: torch.Tensor, score: torch.Tensor, k: torch.Tensor, n: torch.Tensor, **kw):
    """``op(x, score, k, **kw)`` (a backend of smoot::mask on (B, G, M)) for rows whose first
    ``n[b]`` units are real and the rest padding; see the module docstring."""
    B, G, M = x.shape
    real = torch.arange(M, device=x.device) < n.unsqueeze(1)              # (B, M)
    real3 = real.unsqueeze(1)
    score = torch.where(real3, score, torch.full((), float("nan"), dtype=score.dtype, device=x.device))
    if kw["fill"] == "constant":
        return op(x, score, k, **kw)
    _, masked = op(x, score, k, **{**kw, "fill": "constant"})
    kept = real & ~masked
    none_kept = ~kept.any(dim=1)
    pool = torch.where(none_kept.unsqueeze(1), real, kept).unsqueeze(1)  # (B, 1, M)
    xd = x.detach()
    count = pool.sum(dim=2, keepdim=True)
    mean = torch.where(pool, xd.double(), 0.0).sum(dim=2, keepdim=True) / count.clamp(min=1)
    # Rows without a real unit (n = 0) keep their padding as it is: nothing is masked there.
    pad = torch.where(count > 0, mean.to(x.dtype), xd)
    x_in = torch.where(real3, x, pad)
    k_in = torch.where(none_kept & (n > 0), torch.full_like(k, M), k)
    out, masked = op(x_in, score, k_in, **kw)
    return torch.where(real3, out, x), masked & real
