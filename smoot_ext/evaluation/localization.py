"""How much of a saliency map falls inside a known class-bearing region (synthetic data).

Every metric is computed per image on (B, M) unit scores and a (B, M) boolean region, for the
whole batch at once; images whose region is empty or covers everything give NaN (undefined)
and are skipped by the callers' nanmean. ``real`` (B, M) bool, where given, marks each sample's
own units (padded sequences): padding is never ranked, never a negative, never counted.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from .perturbation import counts_removed_per_row


def _check(scores: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    region = region.reshape(region.shape[0], -1).to(device=scores.device, dtype=torch.bool)
    if region.shape != scores.shape:
        raise ValueError(f"region: expected shape {tuple(scores.shape)} (one flag per unit of the scores), "
                         f"got {tuple(region.shape)}")
    return region


def _real(scores: torch.Tensor, region: torch.Tensor, real: torch.Tensor | None):
    """(scores with padding at -inf, region within the real units, real units per row)."""
    if real is None:
        return scores, region, torch.full((scores.shape[0],), scores.shape[1], device=scores.device)
    real = _check(scores, real)
    low = torch.full((), -torch.inf, dtype=scores.dtype, device=scores.device)
    return torch.where(real, scores, low), region & real, real.sum(dim=1)


def precision_at_region(scores: torch.Tensor, region: torch.Tensor,
                        real: torch.Tensor | None = None) -> torch.Tensor:
    """(B,) fraction of the R most salient units that lie in the region, R = region size.

    Ties go to the lower index (stable sort), as in the accuracy-drop ranking; padding ranks last."""
    region = _check(scores, region)
    scores, region, _ = _real(scores.float(), region, real)
    order = torch.sort(scores.float(), dim=1, descending=True, stable=True).indices
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(scores.shape[1], device=scores.device).expand_as(order))
    size = region.sum(dim=1)
    hits = (region & (rank < size.unsqueeze(1))).sum(dim=1)
    return torch.where(size > 0, hits / size.clamp(min=1), torch.nan)


def auroc(scores: torch.Tensor, region: torch.Tensor, real: torch.Tensor | None = None) -> torch.Tensor:
    """(B,) area under the ROC curve of `scores` as a detector of the region's units.

    Mann-Whitney form: (sum of the positives' ranks - P(P+1)/2) / (P N), with tied scores
    given their average rank, so it equals sklearn's roc_auc_score per image (over its real
    units: padding, at -inf, lies below every positive and is taken out of the ranks)."""
    region = _check(scores, region)
    s, region, n = _real(scores.double(), region, real)
    sorted_s = torch.sort(s, dim=1).values
    below = torch.searchsorted(sorted_s, s, right=False)   # number strictly smaller
    upto = torch.searchsorted(sorted_s, s, right=True)     # number smaller or equal
    avg_rank = (below + upto + 1).double() / 2.0           # 1-based average rank
    pos = region.sum(dim=1).double()
    pad = (region.shape[1] - n).double()
    neg = n - pos
    u = torch.where(region, avg_rank, 0.0).sum(dim=1) - pos * (pos + 1) / 2.0 - pad * pos
    return torch.where((pos > 0) & (neg > 0), u / (pos * neg).clamp(min=1), torch.nan).float()


# The benchmark's levels: the top 10%, 20%, ..., 90% of each sample's own units.
BENCHMARK_LEVELS = tuple(i / 10 for i in range(1, 10))


def _weighted_precision_recall(scores: torch.Tensor, region: torch.Tensor,
                               real: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """(L, B) precision and recall of the top ``BENCHMARK_LEVELS`` of the units, each unit
    weighted by its |score| (Ismail et al. 2020, TS-Interpretability-Benchmark's
    getPrecisionRecall.py): precision = |score| inside the region among the top / |score| of the
    top, recall = the same / |score| of the whole region; NaN where a denominator is 0."""
    region = _check(scores, region)
    real = torch.ones_like(region) if real is None else _check(scores, real)
    s, region, _ = _real(scores.float(), region, real)
    w = torch.where(real, scores.float().abs(), 0.0)
    order = torch.sort(s, dim=1, descending=True, stable=True).indices
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(s.shape[1], device=s.device).expand_as(order))
    top = rank.unsqueeze(0) < counts_removed_per_row(BENCHMARK_LEVELS, real).unsqueeze(2)  # (L, B, M)
    hit = (w * (top & region)).sum(dim=2)
    picked, truth = (w * top).sum(dim=2), (w * region).sum(dim=1).expand_as(hit)
    nan = torch.full_like(hit, torch.nan)
    return torch.where(picked > 0, hit / picked, nan), torch.where(truth > 0, hit / truth, nan)


def saliency_precision(scores: torch.Tensor, region: torch.Tensor, real: torch.Tensor | None = None) -> torch.Tensor:
    """(B,) the benchmark's saliency-weighted precision, averaged over its levels (its AUP, by the
    rectangle rule on [0.1, 0.9]); see ``_weighted_precision_recall``."""
    return _weighted_precision_recall(scores, region, real)[0].nanmean(dim=0)


def saliency_recall(scores: torch.Tensor, region: torch.Tensor, real: torch.Tensor | None = None) -> torch.Tensor:
    """(B,) the benchmark's saliency-weighted recall, averaged over its levels (its AUR)."""
    return _weighted_precision_recall(scores, region, real)[1].nanmean(dim=0)


@dataclass(frozen=True)
class LocalisationMetric:
    heading: str  # its name in the reports' tables
    per_image: Callable[..., torch.Tensor]  # (scores, region, real units or None) -> (B,)


# Adding a localisation metric is one entry here.
LOCALISATION = {
    "precision_at_region": LocalisationMetric("Precision@region", precision_at_region),
    "auroc": LocalisationMetric("AUROC", auroc),
    "saliency_precision": LocalisationMetric("AUP (benchmark)", saliency_precision),
    "saliency_recall": LocalisationMetric("AUR (benchmark)", saliency_recall),
}
