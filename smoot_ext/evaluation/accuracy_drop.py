"""Modification-based evaluation (the paper's Figure 3 and Tables 2-3).

Rank the units of each image by saliency, replace the top x% with a fill, and measure the
accuracy at each x. The removal goes through `smoot_ext.mask` with score = -saliency, so "the
k least important of -saliency" = "the k MOST salient", ties to the lower index, and the
"uniform" fill is exactly the one the paper trains with.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

DEFAULT_PERCENTAGES = tuple(range(0, 100, 10))
FILLS = ("background", "uniform")


def check_percentages(percentages: Sequence[float]) -> list[float]:
    """At least two strictly increasing values in [0, 100] (an AUC needs an interval)."""
    p = [float(v) for v in percentages]
    if len(p) < 2:
        raise ValueError(f"--percentages: expected at least 2 values in [0, 100], got {p}")
    bad = [v for v in p if not 0.0 <= v <= 100.0]
    if bad:
        raise ValueError(f"--percentages: every value must lie in [0, 100], got {bad} in {p}")
    if any(b <= a for a, b in zip(p, p[1:])):
        raise ValueError(f"--percentages: expected strictly increasing values, got {p}")
    return p


def check_fill(fill: str) -> str:
    if fill not in FILLS:
        raise ValueError(f"--fill: expected one of {', '.join(FILLS)}, got {fill!r}")
    return fill


def counts_removed(percentages: Sequence[float], num_units: int) -> list[int]:
    """k = floor(x% of M) units removed at each percentage."""
    return [int(np.floor(p * num_units / 100.0 + 1e-9)) for p in percentages]


@torch.no_grad()
def correct_after_removal(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    scores: torch.Tensor,
    percentages: Sequence[float],
    *,
    unit: str = "pixel",
    fill: str = "uniform",
    background=0.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Number of correct predictions (int64, one per percentage) on the batch `x` after the
    top-x% units by `scores` (B, M) are removed. One masked forward pass per percentage, for
    the whole batch. `background` is one value or one per channel (e.g. black in normalised
    CIFAR units differs per channel)."""
    import smoot_ext  # late: smoot_ext/__init__ imports this package's parent

    check_fill(fill)
    B, M = scores.shape
    if B != x.shape[0]:
        raise ValueError(f"scores: expected {x.shape[0]} rows (the batch of x), got {B}")
    # score for smoot_ext.mask: one channel per pixel, or x's own shape per feature.
    score_shape = (B, 1, *x.shape[2:]) if unit == "pixel" else x.shape
    neg = (-scores.float()).reshape(score_shape)
    bg = background_tensor(background, x)
    correct = []
    for k in counts_removed(percentages, M):
        xm, removed = smoot_ext.mask(x, neg, k, unit=unit, abs=False, fill="uniform", generator=generator)
        if fill == "background":  # the op's fill is a scalar; the background may differ per channel
            xm = torch.where(removed.unsqueeze(1) if unit == "pixel" else removed, bg, x)
        correct.append((model(xm).argmax(dim=1) == y).sum())
    return torch.stack(correct).cpu()


def background_tensor(background, x: torch.Tensor) -> torch.Tensor:
    """The background as a tensor broadcastable to x: (1, C, 1, ...) for per-channel values."""
    bg = torch.as_tensor(background, dtype=x.dtype, device=x.device).reshape(-1)
    if bg.numel() == 1:
        return bg.reshape(())
    if x.dim() < 3 or bg.numel() != x.shape[1]:
        raise ValueError(f"background: expected 1 value or one per channel ({x.shape[1]}), got {bg.numel()}")
    return bg.reshape(1, -1, *([1] * (x.dim() - 2)))


def random_scores(batch: int, num_units: int, generator: torch.Generator | None, device) -> torch.Tensor:
    """The random-ranking baseline: i.i.d. uniform scores give a uniformly random order."""
    return torch.rand(batch, num_units, generator=generator, device="cpu").to(device)


def auc(percentages: Sequence[float], accuracy_pct: Sequence[float]) -> float:
    """Trapezoid area under accuracy(%) vs. fraction removed (percent / 100).

    Units: accuracy-% x fraction removed; a model at 100% everywhere on 0..90% scores 90.
    The paper's MNIST values (33-36) sit on this scale; smaller = steeper drop = better saliency.
    """
    x = np.asarray(percentages, dtype=np.float64) / 100.0
    y = np.asarray(accuracy_pct, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"accuracy_pct: expected {x.shape[0]} values (one per percentage), got {y.shape[0]}")
    return float(np.trapezoid(y, x))
