"""How much of a saliency map falls inside a known class-bearing region (synthetic data).

Every metric is computed per image on a batch of maps, (B, *map shape) scores and a boolean
region of the same shape, for the whole batch at once; images whose region is empty (or, for
AUROC, covers everything) give NaN (undefined) and are skipped by the callers' nanmean.
``real`` (same shape, bool), where given, marks each sample's own units (padded sequences):
padding is never ranked, never a negative, never counted.

AUP and AUR are those of the time-series benchmark of Ismail et al. 2020
(TS-Interpretability-Benchmark, Scripts/: ``Helper.givenAttGetRescaledSaliency`` and
``getIndexOfAllhighestSalientValues``, ``createMasks.py``, ``getPrecisionRecall.py``,
``getFeatureTimePrecisionRecall.py``, ``getAccuracyMetrics.py``), ported formula for formula:

- each map is min-max rescaled over its real units (sklearn's ``minmax_scale``: a constant map
  becomes all 0);
- at each level p = 0.1, ..., 0.9 the selection is the fewest top units whose rescaled saliency
  reaches p of the map's total (at least 1 unit, at most all but one); ties in the ranking go to
  the higher index (numpy's stable ``argsort``, read from its end);
- true positives, false positives and false negatives are weighted by the rescaled saliency;
  a precision or recall without weight is undefined (the benchmark leaves it out of its mean);
- AUP and AUR integrate the per-level values with the trapezoid rule over x = 0.1..0.9 (at most 0.8).

The time (feature) variant scores the steps (features) that hold a selected or a true unit, each
weighted by the mean of its k largest rescaled values, k being the truth's number of steps for a
step (of features for a feature), as the benchmark's script does.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from .units import REMOVAL_UNITS, Unit

# createMasks.py's percentages 10, 20, ..., 90, divided by 100 as its helper does.
LEVELS = tuple(p / 100 for p in range(10, 100, 10))
RANGE_EPS = 10 * torch.finfo(torch.float64).eps  # sklearn's _handle_zeros_in_scale: a smaller range is constant


def _check(scores: torch.Tensor, region: torch.Tensor, what: str = "region") -> torch.Tensor:
    region = region.to(device=scores.device, dtype=torch.bool)
    if region.numel() != scores.numel() or region.shape[0] != scores.shape[0]:
        raise ValueError(f"{what}: expected shape {tuple(scores.shape)} (one flag per unit of the scores), "
                         f"got {tuple(region.shape)}")
    return region.reshape(scores.shape)


def _real(scores: torch.Tensor, region: torch.Tensor, real: torch.Tensor | None):
    """(scores with padding at -inf, region within the real units, real units per row)."""
    if real is None:
        return scores, region, torch.full((scores.shape[0],), scores.shape[1], device=scores.device)
    real = _check(scores, real, "real")
    low = torch.full((), -torch.inf, dtype=scores.dtype, device=scores.device)
    return torch.where(real, scores, low), region & real, real.sum(dim=1)


def _flat(scores: torch.Tensor, region: torch.Tensor, real: torch.Tensor | None):
    """(B, M) views of a batch of maps of any shape."""
    scores = scores.reshape(scores.shape[0], -1)
    return scores, _check(scores, region), None if real is None else _check(scores, real, "real")


def precision_at_region(scores: torch.Tensor, region: torch.Tensor,
                        real: torch.Tensor | None = None) -> torch.Tensor:
    """(B,) fraction of the R most salient units that lie in the region, R = region size.

    Ties go to the lower index (stable sort), as in the accuracy-drop ranking; padding ranks last."""
    scores, region, real = _flat(scores, region, real)
    scores, region, _ = _real(scores.float(), region, real)
    order = torch.sort(scores, dim=1, descending=True, stable=True).indices
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
    scores, region, real = _flat(scores, region, real)
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


# --- the time-series benchmark's AUP and AUR ------------------------------------------------

def rescaled(scores: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """(B, M) float64: each row min-max scaled over its real units as sklearn's ``minmax_scale``
    computes it (x * scale - min * scale); padding 0."""
    s = scores.double()
    low = torch.where(real, s, torch.inf).amin(dim=1, keepdim=True)
    high = torch.where(real, s, -torch.inf).amax(dim=1, keepdim=True)
    span = high - low
    scale = 1.0 / torch.where(span < RANGE_EPS, 1.0, span)
    return torch.where(real, s * scale - low * scale, 0.0)


def selections(r: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """(L, B, M) bool: the benchmark's selection at each of ``LEVELS`` of the rescaled maps ``r``.

    ``getIndexOfAllhighestSalientValues`` grows X from 1 while the top X hold less than p of
    the total and X < n - 1; the total's share never falls as X grows, so X is the smallest
    count reaching p (the top n - 1 hold it all: the lowest unit rescales to 0). A map without
    weight (0/0: NaN shares) keeps X = 1."""
    ranked = torch.where(real, r, -torch.inf)  # padding below every real unit
    order = torch.sort(ranked, dim=1, stable=True).indices  # ascending; its end is the top
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(r.shape[1], device=r.device).expand_as(order))
    share = r.gather(1, order.flip(1)).cumsum(dim=1) / r.sum(dim=1, keepdim=True)  # top X's share, X = 1..M
    levels = torch.tensor(LEVELS, dtype=r.dtype, device=r.device).view(-1, 1, 1)
    count = 1 + (share.unsqueeze(0) < levels).sum(dim=2)  # (L, B); NaN shares count as not below
    return rank.unsqueeze(0) >= r.shape[1] - count.unsqueeze(2)


def _ratio(tp: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
    total = tp + other
    return torch.where(total > 0, tp / torch.where(total > 0, total, 1.0), torch.nan)


def _weighted_pr(weight, truth, picked, defined):
    """(L, B) precision and recall of ``picked`` (L, B, K) against ``truth`` (B, K), each unit
    weighted by ``weight`` (B, K); NaN where undefined or ``defined`` (B,) is False."""
    picked = picked.to(weight.dtype)
    true_weight = weight * truth
    tp = torch.einsum("lbk,bk->lb", picked, true_weight)
    fp = torch.einsum("lbk,bk->lb", picked, weight) - tp
    fn = true_weight.sum(dim=1) - tp
    nan = torch.full_like(tp, torch.nan)
    return (torch.where(defined, _ratio(tp, fp), nan), torch.where(defined, _ratio(tp, fn), nan))


def _prepared(scores, region, real):
    """(rescaled (B, M), region within the real units, real units, selections (L, B, M))."""
    scores, region, real = _flat(scores, region, real)
    real = torch.ones_like(region) if real is None else real
    r = rescaled(scores, real)
    return r, region & real, real, selections(r, real)


def benchmark_curves(scores, region, real=None) -> tuple[torch.Tensor, torch.Tensor]:
    """(L, B) precision and recall of every unit (getPrecisionRecall.py) at each of ``LEVELS``."""
    r, region, _, picked = _prepared(scores, region, real)
    return _weighted_pr(r, region, picked, region.any(dim=1))


def _top_mean(r: torch.Tensor, real: torch.Tensor, k: torch.Tensor, dim: int) -> torch.Tensor:
    """Mean of the k[b] largest real values of each line along ``dim`` (``getAverageOfMaxX``;
    k = 0 takes every value, as its ``array[-0:]`` does; k is at most the line's length)."""
    n = real.sum(dim=dim)
    k = k.view(-1, 1).expand_as(n)
    k = torch.where(k == 0, n, torch.minimum(k, n))
    top = torch.where(real, r, 0.0).sort(dim=dim, descending=True).values.cumsum(dim=dim)
    total = top.gather(dim, (k - 1).clamp(min=0).unsqueeze(dim)).squeeze(dim)
    return total / k.clamp(min=1)


def axis_curves(scores, region, real=None, *, axis: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(L, B) precision and recall of the time steps (axis "time") or the features ("feature")
    of (B, T, F) series maps (getFeatureTimePrecisionRecall.py): a step (feature) is picked
    when any unit of it is selected, true when any unit of it is."""
    if scores.dim() != 3:
        raise ValueError(f"scores: expected (B, T, F) series maps for the {axis} precision, "
                         f"got shape {tuple(scores.shape)}")
    r, region, real, picked = _prepared(scores, region, real)
    shape = scores.shape
    r, region, real, picked = r.view(shape), region.view(shape), real.view(shape), picked.view(-1, *shape)
    other = {"time": 2, "feature": 1}[axis]  # a step's units lie along the features, and back
    truth = region.any(dim=other)
    weight = _top_mean(r, real, truth.sum(dim=1), other)
    return _weighted_pr(weight, truth, picked.any(dim=other + 1), truth.any(dim=1))


def _area(curve: torch.Tensor) -> torch.Tensor:
    """(B,) trapezoid area over x = LEVELS (getAccuracyMetrics.py's np.trapz), float32."""
    x = torch.tensor(LEVELS, dtype=curve.dtype, device=curve.device)
    return torch.trapezoid(curve, x, dim=0).float()


def _aup_aur(curves: Callable, which: int, **kw) -> Callable[..., torch.Tensor]:
    def per_image(scores, region, real=None):
        return _area(curves(scores, region, real, **kw)[which])
    return per_image


@dataclass(frozen=True)
class LocalisationMetric:
    heading: str  # its name in the reports' tables
    per_image: Callable[..., torch.Tensor]  # (scores, region, real units or None) -> (B,)
    series: bool = False  # needs (B, T, F) maps of single values: scored at a series' element level only


# Adding a localisation metric is one entry here.
LOCALISATION = {
    "precision_at_region": LocalisationMetric("Precision@region", precision_at_region),
    "auroc": LocalisationMetric("AUROC", auroc),
    "aup": LocalisationMetric("AUP", _aup_aur(benchmark_curves, 0)),
    "aur": LocalisationMetric("AUR", _aup_aur(benchmark_curves, 1)),
    "aup_time": LocalisationMetric("AUP time", _aup_aur(axis_curves, 0, axis="time"), series=True),
    "aur_time": LocalisationMetric("AUR time", _aup_aur(axis_curves, 1, axis="time"), series=True),
    "aup_feature": LocalisationMetric("AUP feature", _aup_aur(axis_curves, 0, axis="feature"), series=True),
    "aur_feature": LocalisationMetric("AUR feature", _aup_aur(axis_curves, 1, axis="feature"), series=True),
}


# --- what the evaluation scores ----------------------------------------------------------------

STEP = "step_"  # before a metric's key: its value on a series' step-level map


def heading(key: str) -> str:
    """A result's name in the tables: its metric's heading, marked "(steps)" at a series' step
    level; a key no metric has (a record of an older version) as it is."""
    metric = LOCALISATION.get(key.removeprefix(STEP))
    if metric is None:
        return key
    return metric.heading + (" (steps)" if key.startswith(STEP) else "")


def table_keys(keys) -> list[str]:
    """``keys`` in the tables' order: the metrics' order, the step level after the element level,
    then any key no metric has."""
    order = {f"{p}{k}": i for i, (p, k) in enumerate((p, k) for p in ("", STEP) for k in LOCALISATION)}
    return sorted(set(keys), key=lambda k: (order.get(k, len(order)), k))


def _scopes(unit: Unit, region: torch.Tensor, x: torch.Tensor) -> list[tuple[str, Unit, bool]]:
    """(key prefix, map unit, series metrics apply): a series with a truth per value is scored per
    element (the benchmark's units) and per step; anything else on the removal unit's map."""
    if unit.dims == 3 and x.is_floating_point() and tuple(region.shape[1:]) == tuple(x.shape[1:]):
        return [("", REMOVAL_UNITS["element"], True), (STEP, REMOVAL_UNITS["step"], False)]
    return [("", REMOVAL_UNITS[unit.maps], False)]


def _few_steps(truth: torch.Tensor, real: torch.Tensor | None) -> torch.Tensor:
    """(B,) the truth covers at most half of the real steps: where a step-level score means something
    (a random map's precision is the truth's share of the steps)."""
    steps = real.sum(dim=1) if real is not None else torch.full_like(truth[:, 0], truth.shape[1], dtype=torch.long)
    return 2 * truth.sum(dim=1) <= steps


def localisation_scores(attribution: torch.Tensor, region: torch.Tensor, x: torch.Tensor,
                        lengths: torch.Tensor | None, unit: Unit, abs: bool) -> dict[str, torch.Tensor]:
    """{result key: (B,)} of every metric on one batch's attribution (shaped as ``x``, the model's
    input); the step level is NaN where the truth covers more than half of the steps."""
    out = {}
    for prefix, per, series in _scopes(unit, region, x):
        scores = per.scores(attribution, abs).reshape(-1, *per.map_shape(x))
        truth = per.region(region.to(scores.device), x).reshape(scores.shape)
        real = per.real(lengths, x)
        real = None if real is None else real.reshape(scores.shape)
        keep = _few_steps(truth, real) if prefix == STEP else None
        for k, metric in LOCALISATION.items():
            if series or not metric.series:
                v = metric.per_image(scores, truth, real)
                out[prefix + k] = v if keep is None else torch.where(keep, v, torch.nan)
    return out
