"""The pure-PyTorch oracle of ``smoot::mask`` and ``smoot::update_k``, written from docs/SPEC.md.

Readable first, fast never: every kernel (C++ CPU, CUDA, Triton) is tested against these
functions, and they are tested against a literal per-row Python loop (tests/test_reference.py).
Inputs are in the ops' own layout: x ``(B, G, M)``, score ``(B, S, M)``, k ``(B,)``, and are
checked as every backend checks them (smoot_ext/checks.py).
"""
from __future__ import annotations

import torch

from . import checks

UINT32 = 0xFFFFFFFF
PHILOX_M0, PHILOX_M1 = 0xD2511F53, 0xCD9E8D57  # round multipliers
PHILOX_W0, PHILOX_W1 = 0x9E3779B9, 0xBB67AE85  # key increments (Weyl sequence)
STEP_BOUND = 2.0**62  # SPEC update_k step 4: |step| <= 2**62
UNIFORM_SCALE = 4.6566127342e-10  # Triton's uint_to_uniform_float: largest with (2**31-1)*s < 1


def _mulhilo32(a: int, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """High and low 32-bit words of ``a * b`` for a uint32 constant and uint32 values in int64.

    The 64-bit product would overflow int64, so it is built from 16-bit limbs.
    """
    a_hi, a_lo = a >> 16, a & 0xFFFF
    b_hi, b_lo = b >> 16, b & 0xFFFF
    lo = (a_lo * b + ((a_hi * b) & 0xFFFF) * 65536) & UINT32
    mid = a_hi * b_lo + a_lo * b_hi + ((a_lo * b_lo) >> 16)
    hi = a_hi * b_hi + (mid >> 16)
    return hi, lo


def philox4x32_10(c0, c1, c2, c3, k0: int, k1: int) -> list[torch.Tensor]:
    """Philox4x32-10 on int64 tensors holding uint32 counter words; returns [w0, w1, w2, w3]."""
    c = [torch.as_tensor(v, dtype=torch.int64) for v in (c0, c1, c2, c3)]
    c0, c1, c2, c3 = torch.broadcast_tensors(*c)
    for _ in range(10):
        hi0, lo0 = _mulhilo32(PHILOX_M0, c0)
        hi1, lo1 = _mulhilo32(PHILOX_M1, c2)
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
        k0 = (k0 + PHILOX_W0) & UINT32
        k1 = (k1 + PHILOX_W1) & UINT32
    return [c0, c1, c2, c3]


def uint_to_uniform(w: torch.Tensor) -> torch.Tensor:
    """Triton's ``uint_to_uniform_float`` for uint32 words held in int64: [0, 1) in float32."""
    i = torch.where(w >= 2**31, w - 2**32, w)  # reinterpret as int32
    i = torch.where(i < 0, -i - 1, i)
    return i.to(torch.float32) * torch.tensor(UNIFORM_SCALE, dtype=torch.float32)


def uniform_for_elements(n: torch.Tensor, seed: int) -> torch.Tensor:
    """The [0, 1) number of element counter(s) ``n`` (int64) under ``seed`` (SPEC step 6)."""
    c = n >> 2
    words = philox4x32_10(c & UINT32, (c >> 32) & UINT32, 0, 0, seed & UINT32, (seed >> 32) & UINT32)
    word = torch.stack(words).gather(0, (n & 3).unsqueeze(0)).squeeze(0)
    return uint_to_uniform(word)


def unit_scores(score: torch.Tensor, abs: bool) -> torch.Tensor:
    """u[b, m] = f(score[b,0,m]) + ... + f(score[b,S-1,m]) in float32, left to right."""
    s = score.float()
    if abs:
        s = s.abs()
    u = s[:, 0]
    for j in range(1, s.shape[1]):
        u = u + s[:, j]
    return u


def select_lowest(u: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """mask[b, m] = m is among the first k[b] indices of a stable ascending sort of u[b]."""
    order = torch.sort(u, dim=1, stable=True).indices  # NaN last, -0.0 == +0.0, ties by index
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(u.shape[1], device=u.device).expand_as(order))
    return rank < k.to(torch.int64).unsqueeze(1)


def mask(x: torch.Tensor, score: torch.Tensor, k: torch.Tensor, *, abs: bool = True,
         fill: str = "uniform", value: float = 0.0, seed: int = 0, offset: int = 0):
    """docs/SPEC.md ``smoot::mask`` on (B, G, M): returns (out, mask) with mask (B, M) bool."""
    B, G, _, M = checks.check_mask(x, score, k, fill=fill, offset=offset)
    checks.check_mask_k(k, M)
    if B == 0 or M == 0:  # nothing to rank (k must then be 0) and no range to fill from
        return x.clone(), torch.zeros(B, M, dtype=torch.bool, device=x.device)
    masked = select_lowest(unit_scores(score, abs), k)                     # (B, M)
    # The fill is a constant w.r.t. x (SPEC step 7): it is built from x.detach().
    xd = x.detach()
    kept = ~masked
    kept = kept | ~kept.any(dim=1, keepdim=True)                          # none kept: all count
    kept3 = kept.unsqueeze(1)                                             # (B, 1, M)
    if fill == "uniform":
        lo = torch.where(kept3, xd, torch.full_like(xd, float("inf"))).amin(dim=2, keepdim=True)
        hi = torch.where(kept3, xd, torch.full_like(xd, float("-inf"))).amax(dim=2, keepdim=True)
        lo, hi = lo.float(), hi.float()
        n = offset + torch.arange(B * G * M, dtype=torch.int64, device=x.device).view(B, G, M)
        r = uniform_for_elements(n, seed)
        filled = (lo + r * (hi - lo)).to(x.dtype)
    elif fill == "constant":
        filled = torch.full_like(xd, value)
    else:  # "mean"
        total = torch.where(kept3, xd.double(), 0.0).sum(dim=2, keepdim=True)
        mean = (total / kept3.sum(dim=2, keepdim=True)).float()
        filled = mean.to(x.dtype).expand_as(xd)
    out = torch.where(masked.unsqueeze(1), filled, x)
    return out, masked


def update_k(logits: torch.Tensor, logits_masked: torch.Tensor, k: torch.Tensor, *, alpha: float,
             mu: float, n: int, kmin: int, kmax: int, rounding: str = "floor"):
    """docs/SPEC.md ``smoot::update_k`` (SMOOT Algorithm 2, lines 3-6): returns (k_new, delta)."""
    checks.check_update_k(logits, logits_masked, k, alpha=alpha, mu=mu, n=n, kmin=kmin, kmax=kmax,
                          rounding=rounding)
    p = torch.softmax(logits.float(), dim=1)
    q = torch.softmax(logits_masked.float(), dim=1)
    n_top = min(n, p.shape[1])
    top = torch.sort(p, dim=1, descending=True, stable=True).indices[:, :n_top]
    d = (q - p).gather(1, top)                                            # (B, n')
    delta1 = d[:, 0]
    delta2 = d[:, 1:].mean(dim=1) if n_top > 1 else torch.zeros_like(delta1)
    delta = alpha * delta1 + (1 - alpha) * delta2
    # The step, bounded by 2**62 before the cast (a float -> int64 cast of NaN or of a value
    # past int64 has no defined result); a NaN delta gives the lowest step, hence kmin.
    t = (torch.floor if rounding == "floor" else torch.trunc)(mu * delta)
    t = torch.nan_to_num(t, nan=-STEP_BOUND).clamp(-STEP_BOUND, STEP_BOUND)
    step = t.to(torch.int64)
    k_new = torch.clamp(k.to(torch.int64) + step, kmin, kmax).to(k.dtype)
    return k_new, delta


def mask_padded(x: torch.Tensor, score: torch.Tensor, k: torch.Tensor, n: torch.Tensor, *,
                abs: bool = True, fill: str = "uniform", value: float = 0.0, seed: int = 0,
                offset: int = 0):
    """docs/SPEC.md, Padding, on (B, G, M) whose row b has ``n[b]`` real units (the first ones),
    row by row: the oracle of ``smoot_ext.mask(..., lengths=)`` (smoot_ext/padding.py)."""
    B, G, _, M = checks.check_mask(x, score, k, fill=fill, offset=offset)
    out, masked = x.clone(), torch.zeros(B, M, dtype=torch.bool, device=x.device)
    xd = x.detach()
    for b in range(B):
        L, kb = int(n[b]), int(k[b])
        if not 0 <= kb <= L <= M:
            raise ValueError(f"k, n: expected 0 <= k[b] <= n[b] <= M = {M}, got k[{b}] = {kb}, n[{b}] = {L}")
        if kb == 0:
            continue
        masked[b, :L] = select_lowest(unit_scores(score[b:b + 1, :, :L], abs), k[b:b + 1])[0]
        pool = ~masked[b, :L] if kb < L else torch.ones(L, dtype=torch.bool, device=x.device)
        real = xd[b, :, :L]
        if fill == "uniform":
            lo = real[:, pool].amin(dim=1, keepdim=True).float()
            hi = real[:, pool].amax(dim=1, keepdim=True).float()
            idx = offset + (b * G + torch.arange(G, device=x.device).view(G, 1)) * M \
                + torch.arange(L, device=x.device)
            filled = (lo + uniform_for_elements(idx, seed) * (hi - lo)).to(x.dtype)
        elif fill == "constant":
            filled = torch.full_like(real, value)
        else:
            filled = (real[:, pool].double().mean(dim=1, keepdim=True).float()).to(x.dtype).expand_as(real)
        out[b, :, :L] = torch.where(masked[b, :L], filled, real)
    return out, masked
