"""What replaces the removed units: the training fill, a constant, the mean, or ROAD's imputation.

- ``uniform``: uniform in [min, max] of the image's kept values per channel, exactly the fill
  SGT/SMOOT train with (drawn by ``smoot_ext.mask``).
- ``constant``: one value, or one per channel (default: black in the data's units).
- ``mean``: the mean of the image's kept values, per channel (``smoot_ext.mask``'s mean fill).
- ``road``: ROAD's noisy linear imputation (Rong et al., ICML 2022): every removed pixel is the
  weighted mean of its eight neighbours (edge neighbours twice the weight of corner ones), all
  removed pixels solved jointly, plus Gaussian noise. A fill that leaves no shape of the removed
  region for the model to see, so the score measures the information removed, not the artefact.

``noisy_linear_impute`` solves that sparse system for a whole batch in torch (Jacobi-
preconditioned conjugate gradients, float64, the stencil as a convolution), so it runs on a
GPU as well as on the CPU.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

FILLS = ("uniform", "constant", "mean", "road")
FILL_ALIASES = {"background": "constant"}  # the name earlier reports used for black
ROAD_NOISE = 0.01  # ROAD's default noise std, in the data's units


def check_fill(fill: str) -> str:
    """The canonical fill name; raises naming the option and the choices."""
    fill = FILL_ALIASES.get(fill, fill)
    if fill not in FILLS:
        raise ValueError(f"--fill: unknown fill {fill!r}; choose from {', '.join(FILLS)}")
    return fill


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
            raise ValueError(f"--road-noise: expected a std >= 0, got {self.noise}")


def remove(x: torch.Tensor, score: torch.Tensor, k, imputation: Imputation, *, unit: str = "pixel",
           seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Replace the k units of each image with the lowest ``score`` by the imputation's fill.

    The ranking is always `smoot_ext.mask`'s (ties to the lower index), so every fill removes
    the same units. ``seed`` fixes the random fills (uniform, road noise). Returns (x', removed)
    with removed (B, H, W) for pixels or x's shape for features."""
    import smoot_ext  # late: smoot_ext/__init__ imports this package's parent

    fill = imputation.fill
    value = imputation.value[0] if len(imputation.value) == 1 else 0.0
    op_fill = fill if fill in ("uniform", "mean") else "constant"
    out, removed = smoot_ext.mask(x, score, k, unit=unit, abs=False, fill=op_fill, value=value, seed=seed)
    where = removed.unsqueeze(1) if unit == "pixel" else removed
    if fill == "constant" and len(imputation.value) > 1:  # the op's constant is one scalar
        out = torch.where(where, background_tensor(imputation.value, x), x)
    elif fill == "road":
        if x.dim() != 4:
            raise ValueError(f"--fill road: needs NCHW images (a pixel grid), got shape {tuple(x.shape)}")
        gen = torch.Generator(device=x.device).manual_seed(seed)
        out = noisy_linear_impute(x, where.expand_as(x), noise=imputation.noise, generator=gen)
    return out, removed


# ROAD's neighbour weights: edge neighbours twice the weight of corner ones, summing to one.
ROAD_STENCIL = ((1 / 12, 1 / 6, 1 / 12),
                (1 / 6, 0.0, 1 / 6),
                (1 / 12, 1 / 6, 1 / 12))


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
    v = x.detach().reshape(B * C, 1, H, W).double()
    r = removed.reshape(B * C, 1, H, W).to(v.dtype)
    kernel = torch.tensor(ROAD_STENCIL, dtype=v.dtype, device=v.device).view(1, 1, 3, 3)

    def neighbours(t):  # sum_j w_ij t_j over in-image neighbours (zero padding = outside)
        return F.conv2d(t, kernel, padding=1)

    diag = neighbours(torch.ones(1, 1, H, W, dtype=v.dtype, device=v.device))  # in-image weight sums
    b = neighbours(v * (1 - r)) * r

    def matvec(t):  # t is zero at kept values, and so is the result
        return (diag * t - neighbours(t)) * r

    sol = _conjugate_gradients(matvec, b, r / diag, tol=tol, max_iter=max_iter or 2 * H * W)
    if noise > 0:
        sol = sol + noise * torch.randn(sol.shape, generator=generator, dtype=sol.dtype, device=sol.device) * r
    return torch.where(removed, sol.reshape(x.shape).to(x.dtype), x)


def _conjugate_gradients(matvec, b: torch.Tensor, precond: torch.Tensor, *, tol: float, max_iter: int,
                         check_every: int = 16) -> torch.Tensor:
    """Solve matvec(v) = b for every row (first dimension) at once, preconditioned by the
    diagonal inverse ``precond``. Rows stop changing once converged (their step becomes zero);
    the convergence check syncs with the device only every ``check_every`` iterations."""
    def dot(a, c):
        return (a * c).flatten(1).sum(1).view(-1, *([1] * (a.dim() - 1)))

    sol = torch.zeros_like(b)
    res = b.clone()
    z = precond * res
    p = z.clone()
    rz = dot(res, z)
    target = tol * b.flatten(1).norm(dim=1)
    for it in range(max_iter):
        ap = matvec(p)
        pap = dot(p, ap)
        alpha = torch.where(pap > 0, rz / pap.clamp(min=1e-300), 0.0)
        sol += alpha * p
        res -= alpha * ap
        if it % check_every == check_every - 1 or it == max_iter - 1:
            if bool((res.flatten(1).norm(dim=1) <= target).all()):
                return sol
        z = precond * res
        rz_new = dot(res, z)
        beta = torch.where(rz > 0, rz_new / rz.clamp(min=1e-300), 0.0)
        p = z + beta * p
        rz = rz_new
    if bool((res.flatten(1).norm(dim=1) <= target).all()):
        return sol
    raise RuntimeError(f"road imputation: conjugate gradients did not converge in {max_iter} iterations")
