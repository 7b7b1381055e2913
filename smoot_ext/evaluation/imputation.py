"""What replaces the removed units: the training fill, a constant, the mean, or ROAD's imputation.

- ``uniform``: uniform in [min, max] of the image's kept values per channel, exactly the fill
  SGT/SMOOT train with (drawn by ``smoot_ext.mask``).
- ``constant``: one value, or one per channel (default: black in the data's units).
- ``mean``: the mean of the image's kept values, per channel (``smoot_ext.mask``'s mean fill).
- ``road``: ROAD's noisy linear imputation (Rong et al., ICML 2022): every removed pixel is the
  weighted mean of its eight neighbours (edge neighbours twice the weight of corner ones), all
  removed pixels solved jointly, plus Gaussian noise. A fill that leaves no shape of the removed
  region for the model to see, so the score measures the information removed, not the artefact.

Adding a fill is one entry of ``IMPUTATIONS``.

``noisy_linear_impute`` solves that sparse system for a whole batch in torch (Jacobi-
preconditioned conjugate gradients, float64, the stencil as a convolution), so it runs on a
GPU as well as on the CPU.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..ops import mask
from .units import check_unit

FILL_ALIASES = {"background": "constant"}  # the name earlier reports used for black
ROAD_NOISE = 0.01  # ROAD's default noise std, in the data's units
NAN_KEY = 0x7F800001  # +inf's bits plus one: above every number, and << 32 still fits an int64


def background_tensor(background, x: torch.Tensor) -> torch.Tensor:
    """A value or one per channel, as a tensor broadcastable to x: (1, C, 1, ...) per channel."""
    bg = torch.as_tensor(background, dtype=x.dtype, device=x.device).reshape(-1)
    if bg.numel() == 1:
        return bg.reshape(())
    if x.dim() < 3 or bg.numel() != x.shape[1]:
        raise ValueError(f"background: expected 1 value or one per channel ({x.shape[1]}), got {bg.numel()}")
    return bg.reshape(1, -1, *([1] * (x.dim() - 2)))


@dataclass(frozen=True)
class Imputation:
    """A fill and its parameters: ``value`` for constant (one or per channel), ``noise`` (std in
    the data's units) for road."""

    fill: str = "uniform"
    value: tuple = (0.0,)
    noise: float = ROAD_NOISE

    def __post_init__(self):
        object.__setattr__(self, "fill", check_fill(self.fill))
        object.__setattr__(self, "value", tuple(float(v) for v in torch.as_tensor(self.value).reshape(-1)))
        if not self.noise >= 0.0:
            raise ValueError(f"road_noise: expected a std >= 0, got {self.noise}")


def _per_channel_constant(x, out, where, imputation: Imputation, seed: int) -> torch.Tensor:
    if len(imputation.value) == 1:
        return out
    return torch.where(where, background_tensor(imputation.value, x), x)  # the op's constant is one scalar


def _road(x, out, where, imputation: Imputation, seed: int) -> torch.Tensor:
    if x.dim() != 4:
        raise ValueError(f"fill: road needs NCHW images (a pixel grid), got shape {tuple(x.shape)}")
    gen = torch.Generator(device=x.device).manual_seed(seed)
    return noisy_linear_impute(x, where.expand_as(x), noise=imputation.noise, generator=gen)


def _constant_words(cfg: dict) -> str:
    value = cfg["fill_value"] if cfg.get("fill_value") is not None else cfg["background"]
    black = " (black in the data's units)" if cfg.get("fill_value") is None else ""
    return f"constant {', '.join(f'{v:.4g}' for v in value)}{black}"


@dataclass(frozen=True)
class Fill:
    """``op_fill``: the fill of ``smoot_ext.mask`` that removes the units; ``then``, if given,
    replaces its result: (x, op output, removed values (broadcastable to x), imputation, seed)
    -> x'; ``words``: the report's description, from the run's configuration dict."""

    op_fill: str
    words: Callable[[dict], str]
    then: Callable | None = None


IMPUTATIONS = {
    "uniform": Fill("uniform", lambda cfg: "uniform in [min, max] of the image's kept values per channel, as in "
                                           "training (smoot_ext.mask)"),
    "constant": Fill("constant", _constant_words, _per_channel_constant),
    "mean": Fill("mean", lambda cfg: "the mean of the image's kept values, per channel"),
    "road": Fill("constant", lambda cfg: "ROAD's noisy linear imputation (each removed pixel the weighted mean of "
                                         "its 8 neighbours, solved jointly, plus Gaussian noise of std "
                                         f"{cfg['road_noise']:g})", _road),
}


def check_fill(fill: str) -> str:
    """The canonical fill name; raises naming the option and the choices."""
    fill = FILL_ALIASES.get(fill, fill)
    if fill not in IMPUTATIONS:
        raise ValueError(f"fill: unknown fill {fill!r}; choose from {', '.join(IMPUTATIONS)}")
    return fill


def remove(x: torch.Tensor, score: torch.Tensor, k, imputation: Imputation, *, unit: str = "pixel",
           seed: int = 0, lengths: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Replace the k units of each image with the lowest ``score`` by the imputation's fill.

    The ranking is always `smoot_ext.mask`'s (ties to the lower index), so every fill removes
    the same units. ``seed`` fixes the random fills (uniform, road noise). ``lengths``: padded
    (B, T, D) sequences, padding never removed nor in a fill's range (smoot_ext.mask's). Returns
    (x', removed) with removed (B, H, W) for pixels, (B, T) for steps or x's shape for features."""
    u = check_unit(unit, "unit")
    spec = IMPUTATIONS[imputation.fill]
    value = imputation.value[0] if len(imputation.value) == 1 else 0.0
    out, removed = mask(x, score, k, unit=u.op_unit, abs=False, fill=spec.op_fill, value=value, seed=seed,
                        lengths=lengths)
    if spec.then is not None:
        out = spec.then(x, out, u.spread(removed), imputation, seed)
    return out, removed


def remove_levels(x: torch.Tensor, score: torch.Tensor, ks: torch.Tensor, imputation: Imputation, *,
                  unit: str = "pixel", seed: int = 0, lengths: torch.Tensor | None = None) -> torch.Tensor:
    """x with the ``ks[l, b]`` lowest-``score`` units of sample b removed, for each level l:
    (L * B, ...), row l * B + b, exactly what ``remove`` gives on the batch tiled L times
    (``score`` (B, M), ``ks`` (L, B)). The fills that ``smoot_ext.mask`` writes as a constant
    (constant, road) rank each sample once and write its L removals from that ranking: a removal
    curve's other L - 1 top-k selections are repeats (on 8x8 digits they were most of the time
    outside the forward passes). The random and mean fills come from the op, on the tiled batch."""
    u = check_unit(unit, "unit")
    L, B = ks.shape
    spec = IMPUTATIONS[imputation.fill]
    if spec.op_fill != "constant" or lengths is not None:
        return remove(tile(x, L), tile(score.reshape(u.score_shape(x)), L), ks.reshape(-1), imputation, unit=unit,
                      seed=seed, lengths=None if lengths is None else lengths.repeat(L))[0]
    removed = u.spread((removal_ranks(score) < ks.unsqueeze(2)).reshape(L * B, *u.map_shape(x)))  # the op's mask
    value = background_tensor(imputation.value, x)  # one value, or one per channel: the constant fill's own
    out = torch.where(removed.view(L, B, *removed.shape[1:]), value, x.unsqueeze(0)).reshape(L * B, *x.shape[1:])
    if imputation.fill != "constant":  # road: solved on the constant-filled removal
        out = spec.then(tile(x, L), out, removed, imputation, seed)
    return out


def removal_ranks(score: torch.Tensor) -> torch.Tensor:
    """(B, M) each unit's place in the order ``smoot_ext.mask`` removes units of ``score`` (B, M)
    in: the lowest score first, ties to the lower index, NaN last (SPEC.md, mask 2)."""
    if score.device.type == "cpu" and score.dtype == torch.float32:
        order = _order_by_keys(score)
    else:
        order = torch.sort(score, dim=1, stable=True).indices
    places = torch.arange(score.shape[1], device=score.device).expand_as(order)
    return torch.empty_like(order).scatter_(1, order, places)


def _order_by_keys(score: torch.Tensor) -> torch.Tensor:
    """torch.sort(score, stable=True)'s order of float32 rows on the CPU, as one numpy sort of
    distinct int64 keys: the float's order-preserving bits above its index, which breaks the ties.
    Keys: a float's bits as an integer for >= 0, their negated magnitude for < 0 (so -0.0 and +0.0
    tie, as torch compares them), every NaN just above +inf (tied). On digits' 360x64 maps, at 2
    threads, the ranking takes 0.19 ms, not 0.55: it was two fifths of our own work beside the
    forward passes there."""
    a = score.detach().contiguous().numpy()
    bits = a.view(np.int32).astype(np.int64)
    key = np.where(bits < 0, -(bits & 0x7FFFFFFF), bits)
    key[np.isnan(a)] = NAN_KEY
    return torch.from_numpy(np.sort(key << 32 | np.arange(a.shape[1]), axis=1) & 0xFFFFFFFF)


def tile(t: torch.Tensor, times: int) -> torch.Tensor:
    """`times` copies of the batch one after the other: row l * B + b is sample b at level l."""
    return t.repeat(times, *([1] * (t.dim() - 1)))


# ROAD's neighbour weights, edge neighbours twice the weight of corner ones, summing to one: the
# binomial kernel's outer product with itself, less its centre, normalised (as _neighbour_sum computes them).
ROAD_STENCIL = ((1 / 12, 1 / 6, 1 / 12),
                (1 / 6, 0.0, 1 / 6),
                (1 / 12, 1 / 6, 1 / 12))


def _neighbour_sum(t: torch.Tensor) -> torch.Tensor:
    """sum_j w_j t_j over the in-image neighbours of every value of t (..., H, W) (zero padding
    stands for outside): two separable [1, 2, 1] passes minus the centre, fewer memory passes
    than a 3x3 convolution (and no float64 convolution, which is slow on the CPU)."""
    p = F.pad(t, (0, 0, 1, 1))
    v = p[..., :-2, :] + 2 * p[..., 1:-1, :] + p[..., 2:, :]
    q = F.pad(v, (1, 1))
    return (q[..., :-2] + 2 * q[..., 1:-1] + q[..., 2:] - 4 * t) / 12


def noisy_linear_impute(x: torch.Tensor, removed: torch.Tensor, *, noise: float = ROAD_NOISE,
                        generator: torch.Generator | None = None, tol: float = 1e-10,
                        max_iter: int | None = None) -> torch.Tensor:
    """ROAD's noisy linear imputation of the ``removed`` (bool, x's shape, NCHW) values of x.

    Each removed value v_i satisfies  sum_j w_ij (v_i - v_j) = 0  over its in-image neighbours j
    (kept neighbours enter as known values): one linear system per image and channel. The matrix
    is symmetric and diagonally dominant, positive definite as long as every connected removed
    region touches a kept value (always, unless the whole image is removed), so conjugate
    gradients converge. Returns x with the solution plus N(0, noise^2) noise at removed values.
    """
    if x.dim() != 4 or removed.shape != x.shape:
        raise ValueError(f"removed: expected x's NCHW shape {tuple(x.shape)}, got {tuple(removed.shape)}")
    B, C, H, W = x.shape
    v = x.detach().reshape(B * C, H, W).double()
    r = removed.reshape(B * C, H, W).to(v.dtype)
    diag = _neighbour_sum(torch.ones(1, H, W, dtype=v.dtype, device=v.device))  # in-image weight sums
    b = _neighbour_sum(v * (1 - r)) * r
    sol = _conjugate_gradients(b, r, diag, tol=tol, max_iter=max_iter or 2 * H * W)
    if noise > 0:
        sol = sol + noise * torch.randn(sol.shape, generator=generator, dtype=sol.dtype, device=sol.device) * r
    return torch.where(removed, sol.reshape(x.shape).to(x.dtype), x)


def _conjugate_gradients(b: torch.Tensor, r: torch.Tensor, diag: torch.Tensor, *, tol: float, max_iter: int,
                         check_every: int = 8) -> torch.Tensor:
    """Solve (diag - neighbours) v = b on the removed values (mask r) of every row at once, by
    Jacobi-preconditioned conjugate gradients. Every ``check_every`` iterations the converged
    rows leave the working set (the rest then costs less; on a GPU it is the only host sync);
    rows with nothing to solve (b = 0: no removed value, or only zero neighbours) never enter."""
    def dot(a, c):
        return (a * c).flatten(1).sum(1).view(-1, 1, 1)

    sol = torch.zeros_like(b)
    target = tol * b.flatten(1).norm(dim=1)
    rows = torch.nonzero(b.flatten(1).abs().amax(dim=1) > 0).squeeze(1)
    b, r, target = b[rows], r[rows], target[rows]
    precond = r / diag
    x = torch.zeros_like(b)
    res = b.clone()
    z = precond * res
    p = z.clone()
    rz = dot(res, z)
    for it in range(1, max_iter + 1):
        if rows.numel() == 0:
            return sol
        ap = (diag * p - _neighbour_sum(p)) * r
        pap = dot(p, ap)
        alpha = torch.where(pap > 0, rz / pap.clamp(min=1e-300), 0.0)  # zero once a row is solved exactly
        x += alpha * p
        res -= alpha * ap
        if it % check_every == 0 or it == max_iter:
            done = res.flatten(1).norm(dim=1) <= target
            if bool(done.any()):
                sol[rows[done]] = x[done]
                keep = ~done
                rows, b, r, target, x, res, p, rz = (t[keep] for t in (rows, b, r, target, x, res, p, rz))
                precond = precond[keep]
                if rows.numel() == 0:
                    return sol
        z = precond * res
        rz_new = dot(res, z)
        p = z + torch.where(rz > 0, rz_new / rz.clamp(min=1e-300), 0.0) * p
        rz = rz_new
    raise RuntimeError(f"road imputation: conjugate gradients did not converge in {max_iter} iterations "
                       f"({rows.numel()} of the systems)")
