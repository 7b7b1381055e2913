"""What an evaluation produces, and the one table of its statistics.

``PerImage`` holds, per model, checkpoint, saliency method and order, whether each image is
still classified right and its true-class probability at every level. Every reported number is
a mean over images of a per-image value; ``STATISTICS`` lists them. Adding a statistic is one
``Statistic`` entry there: ``summary`` computes it (with its intervals and paired differences),
and ``report``, ``plots`` and the study's comparison over seeds render it under its heading.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from .statistics import trapezoid_auc

ORDERS = ("morf", "lerf", "random")  # the removal orders; their index also derives the fill seeds
ORDER_WORDS = {"morf": "MoRF: most relevant first", "lerf": "LeRF: least relevant first",
               "random": "random: a uniformly random order (the same for every model and method)"}
RANDOM = "random"  # the random order, also its key among the saliency methods (it has no saliency map)
METRICS = ("correct", "probability")  # what the curves record per image and level
METRIC_NAMES = {"correct": "accuracy", "probability": "probability"}  # the reports' names of the curves


@dataclass(frozen=True)
class Statistic:
    """One reported statistic: a mean over test images of ``per_image(curves, levels)``, where
    ``curves[order]`` is one method's (N, L) curve of one metric in %, for each order it needs,
    and ``curves["clean"]`` the (N,) metric of the intact inputs."""

    name: str
    orders: tuple[str, ...]  # the curves it needs; a method gets it where it has all of them
    heading: str  # its name in the reports' tables
    better: str | None  # "lower" or "higher" (more faithful); None: a reference with no direction
    per_image: Callable[[dict[str, np.ndarray], list[float]], np.ndarray]
    headline: bool = False  # in the comparison over seeds' table of differences

    @property
    def title(self) -> str:
        """The table heading with its direction, e.g. "AUC MoRF (lower = better)"."""
        return self.heading if self.better is None else f"{self.heading} ({self.better} = better)"

    @property
    def of_saliency(self) -> bool:
        """A property of a saliency map (False: of the random order, i.e. of the model alone)."""
        return RANDOM not in self.orders


def _auc(order: str):
    return lambda curves, levels: trapezoid_auc(levels, curves[order])


def _mean_drop(order: str):
    """ERASER's aggregated form (DeYoung et al. 2020, AOPC over bins): the mean, over the levels
    that remove something, of clean - curve."""
    def per_image(curves, levels):
        removes = np.asarray(levels) > 0
        return (curves["clean"][:, None] - curves[order][:, removes]).mean(axis=1)
    return per_image


STATISTICS = (
    Statistic("auc_morf", ("morf",), "AUC MoRF", "lower", _auc("morf"), headline=True),
    Statistic("auc_lerf", ("lerf",), "AUC LeRF", "higher", _auc("lerf")),
    Statistic("srg", ("morf", "lerf"), "SRG = LeRF - MoRF", "higher",
              lambda c, lv: trapezoid_auc(lv, c["lerf"]) - trapezoid_auc(lv, c["morf"]), headline=True),
    Statistic("auc_random", (RANDOM,), "AUC random order", None, _auc(RANDOM)),
    # After ERASER's ideas: removing the most relevant units should hurt (comprehensiveness),
    # keeping only the most relevant should not (sufficiency). Mean drops over our levels, not
    # ERASER's AOPC (its bins, predicted class, deletion): that is eraser.py's, for text.
    Statistic("comprehensiveness", ("morf",), "MoRF drop (comprehensiveness)", "higher", _mean_drop("morf")),
    Statistic("sufficiency", ("lerf",), "LeRF drop (sufficiency)", "lower", _mean_drop("lerf")),
)
BY_NAME = {s.name: s for s in STATISTICS}
SALIENCY_STATISTICS = tuple(s for s in STATISTICS if s.of_saliency)


def statistics_for(orders) -> list[Statistic]:
    """The statistics whose curves are all among ``orders``, in table order."""
    return [s for s in STATISTICS if set(s.orders) <= set(orders)]


@dataclass
class PerImage:
    """Per-image results. ``runs[model][checkpoint]`` holds "clean" {metric: (N,)} and
    "curves" {(method, order): {metric: (N, L)}} (the random order as (RANDOM, RANDOM)); metric
    "correct" is bool, "probability" float32. ``localisation[model][checkpoint][method]``
    {localisation metric: (N,)} where the batches carried regions (NaN where a region is empty).
    ``eraser[model][checkpoint][method]`` {value: (N, ...)} for token ids with a rationale
    (``eraser.score_batch``'s per-document values; the random scores as method RANDOM)."""

    levels: list[float]
    labels: np.ndarray
    index: np.ndarray  # the images' positions in the test set
    runs: dict
    localisation: dict
    timing: dict
    eraser: dict = field(default_factory=dict)

    @property
    def num_images(self) -> int:
        return int(self.labels.shape[0])

    @cached_property
    def statistics(self) -> dict[str, list[dict[str, dict[str, dict[str, np.ndarray]]]]]:
        """``[model][checkpoint][method][metric][statistic]``: (N,) per-image values in %, for
        every method with curves (the random order as method RANDOM) and every statistic its
        orders allow; computed once, for the summary and the per-image files alike."""
        return {name: [_checkpoint_statistics(run, self.levels) for run in runs] for name, runs in self.runs.items()}


def curve_orders(run: dict) -> dict[str, list[str]]:
    """{method: its orders} of one checkpoint's curves, in the order they were scored."""
    out: dict[str, list[str]] = {}
    for method, order in run["curves"]:
        out.setdefault(method, []).append(order)
    return out


def _checkpoint_statistics(run: dict, levels) -> dict:
    out = {}
    for method, orders in curve_orders(run).items():
        stats = statistics_for(orders)
        if stats:
            out[method] = {}
            for metric in METRICS:
                curves = {o: 100.0 * run["curves"][(method, o)][metric] for o in orders}
                curves["clean"] = 100.0 * run["clean"][metric].astype(np.float64)
                out[method][metric] = {s.name: s.per_image(curves, levels) for s in stats}
    return out
