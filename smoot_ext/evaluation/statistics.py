"""Areas under removal curves, and intervals: bootstrap over test images, Student t over seeds.

Every statistic the report gives is a mean over test images of a per-image value (a per-image
AUC is the trapezoid area of that image's 0/100 accuracy or its true-class probability, and
the mean of those is the AUC of the mean curve). So one bootstrap serves them all: each
resample is a vector of counts (how often each image was drawn), and the resampled means of
every statistic are one matrix product. The same resamples for all columns make differences of
two columns (two models on the same images) a paired bootstrap.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

DEFAULT_RESAMPLES = 1000
DEFAULT_CONFIDENCE = 0.95
_COUNTS_PER_CHUNK = 1 << 22  # resample counts held at once (rows x images), bounds the memory


def trapezoid_auc(levels: Sequence[float], values) -> np.ndarray:
    """Trapezoid area under ``values`` (..., L) over x = ``levels`` (fractions removed)."""
    x = np.asarray(levels, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    if v.shape[-1] != x.shape[0]:
        raise ValueError(f"values: expected {x.shape[0]} per curve (one per level), got {v.shape[-1]}")
    return np.trapezoid(v, x, axis=-1)


def auc_convention(levels: Sequence[float]) -> str:
    """How every AUC of a report is measured, in words (stated in each report)."""
    lv = list(levels)
    zero = "included: the clean image" if lv[0] == 0.0 else "not included"
    return (f"trapezoid rule over the fraction of units removed, x from {lv[0]:g} to {lv[-1]:g} "
            f"({len(lv)} levels; x = 0 {zero}), y in percent (accuracy %, or the mean "
            f"true-class softmax probability in %); units: %-points x fraction removed, at most "
            f"{100 * (lv[-1] - lv[0]):g} for a curve at 100% throughout")


def check_bootstrap(resamples: int, confidence: float) -> None:
    if resamples < 1:
        raise ValueError(f"bootstrap: expected >= 1 resamples, got {resamples}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence: expected a level in (0, 1), got {confidence}")


def bootstrap(values: np.ndarray, *, resamples: int = DEFAULT_RESAMPLES, confidence: float = DEFAULT_CONFIDENCE,
              seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Percentile bootstrap over rows: ``values`` (N images, S statistics) -> (mean, lo, hi),
    each (S,): the column means and their ``confidence`` interval. Seeded: the resamples depend
    only on (N, resamples, seed)."""
    check_bootstrap(resamples, confidence)
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 2 or v.shape[0] < 1:
        raise ValueError(f"values: expected (images, statistics) with at least one image, got shape {v.shape}")
    n = v.shape[0]
    rng = np.random.default_rng(seed)
    means = np.empty((resamples, v.shape[1]))
    chunk = max(1, _COUNTS_PER_CHUNK // n)
    for start in range(0, resamples, chunk):
        rows = min(chunk, resamples - start)
        draws = rng.integers(0, n, size=(rows, n)) + n * np.arange(rows)[:, None]
        counts = np.bincount(draws.ravel(), minlength=rows * n).reshape(rows, n)
        means[start:start + rows] = counts @ v / n
    tail = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(means, [tail, 1.0 - tail], axis=0)
    return v.mean(axis=0), lo, hi


def t_interval(values: np.ndarray, confidence: float = DEFAULT_CONFIDENCE) -> tuple[np.ndarray, ...]:
    """Student-t interval of the mean over rows (e.g. one row per training seed): (mean, lo, hi)."""
    from scipy import stats

    v = np.asarray(values, dtype=np.float64)
    n = v.shape[0]
    if n < 2:
        raise ValueError(f"values: a t interval needs at least 2 rows (seeds), got {n}")
    half = stats.t.ppf(0.5 + confidence / 2.0, n - 1) * v.std(axis=0, ddof=1) / np.sqrt(n)
    mean = v.mean(axis=0)
    return mean, mean - half, mean + half


def welch_interval(a: np.ndarray, b: np.ndarray, confidence: float = DEFAULT_CONFIDENCE) -> tuple[np.ndarray, ...]:
    """Welch interval of mean(b) - mean(a) over independent rows (seeds of two models)."""
    from scipy import stats

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape[0] < 2 or b.shape[0] < 2:
        raise ValueError(f"a, b: a Welch interval needs at least 2 rows each, got {a.shape[0]} and {b.shape[0]}")
    va, vb = a.var(axis=0, ddof=1) / a.shape[0], b.var(axis=0, ddof=1) / b.shape[0]
    se2 = va + vb
    with np.errstate(invalid="ignore", divide="ignore"):
        df = np.where(se2 > 0, se2 ** 2 / (va ** 2 / (a.shape[0] - 1) + vb ** 2 / (b.shape[0] - 1)), 1.0)
    half = stats.t.ppf(0.5 + confidence / 2.0, np.maximum(df, 1.0)) * np.sqrt(se2)
    diff = b.mean(axis=0) - a.mean(axis=0)
    return diff, diff - half, diff + half


def format_interval(mean: float, lo: float, hi: float, spec: str = ".2f", sign: bool = False) -> str:
    """The one wording of an estimate and its interval: ``mean [lo, hi]`` in format ``spec``
    (``+`` before a positive mean with ``sign``: a difference)."""
    return f"{mean:{'+' if sign else ''}{spec}} [{lo:{spec}}, {hi:{spec}}]"
