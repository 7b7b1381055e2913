"""From per-image results to the reported numbers: curves, AUCs, SRG, their intervals, and the
paired differences between models.

The statistics are those of ``results.STATISTICS`` (each a mean over test images, in %, of
the per-image values ``PerImage.statistics`` holds), and for each level the mean curve (the
plots' bands). Each comes with a bootstrap interval over test images. A model given as several checkpoints
(seeds) is scored by its per-image mean over checkpoints; it also gets a Student-t interval
over the checkpoints' own values ("seeds"), and each checkpoint's values are listed. The
difference of two models (later minus earlier, per method, metric and statistic) gets the paired
bootstrap interval over images and, when both have several checkpoints, a Welch interval over
seeds.
"""
from __future__ import annotations

from itertools import combinations

import numpy as np

from . import eraser
from .results import METRIC_NAMES, METRICS, PerImage, curve_orders
from .statistics import auc_convention, bootstrap, t_interval, welch_interval


def _defined_mean(values: np.ndarray) -> float:
    """The mean over the images where a metric is defined; NaN (quietly) where it is nowhere, as
    the benchmark's precision for a map without weight."""
    defined = values[~np.isnan(values)]
    return float(defined.mean()) if defined.size else float("nan")

def summarise(per_image: PerImage, config) -> dict:
    """The JSON-ready summary (see the module docstring); layout:
    models[name]["accuracy"] and models[name]["methods"][method][metric][statistic] are
    {"mean", "lo", "hi"} (+ "seeds": {"mean", "lo", "hi", "values"} with several checkpoints);
    models[name]["methods"][method][metric]["curves"][order] is {"mean", "lo", "hi"} per level;
    differences is a list of {"a", "b", "method", "metric", "statistic", "mean", "lo", "hi"}."""
    levels, orders = per_image.levels, config.orders
    first = next(iter(per_image.runs))
    method_orders = curve_orders(per_image.runs[first][0])  # every checkpoint has the same curves
    methods = list(per_image.statistics[first][0])  # the methods with a statistic, random last
    columns: list[tuple[tuple, np.ndarray]] = []  # (where the result goes, per-image values)
    checkpoint_values: dict[tuple, np.ndarray] = {}  # (name, method, metric, stat) -> (checkpoints,)
    model_values: dict[tuple, np.ndarray] = {}  # (name, method, metric, stat) -> per-image model value

    for name, runs in per_image.runs.items():
        clean = np.mean([100.0 * r["clean"]["correct"] for r in runs], axis=0)
        columns.append((("models", name, "accuracy"), clean))
        for m in methods:
            for metric in METRICS:
                mn = METRIC_NAMES[metric]
                for o in method_orders[m]:
                    curve = np.mean([100.0 * r["curves"][(m, o)][metric] for r in runs], axis=0)  # (N, L)
                    for i in range(len(levels)):
                        columns.append((("models", name, "methods", m, mn, "curves", o, i), curve[:, i]))
                per_run = [stats[m][metric] for stats in per_image.statistics[name]]
                for stat in per_run[0]:
                    values = np.stack([p[stat] for p in per_run])  # (checkpoints, N)
                    model_values[(name, m, mn, stat)] = values.mean(axis=0)
                    checkpoint_values[(name, m, mn, stat)] = values.mean(axis=1)
                    columns.append((("models", name, "methods", m, mn, stat), values.mean(axis=0)))
    names = list(per_image.runs)
    diff_keys = [(a, b, m, mn, stat) for a, b in combinations(names, 2) for (n, m, mn, stat) in model_values if n == a]
    for a, b, m, mn, stat in diff_keys:
        columns.append((("differences", a, b, m, mn, stat),
                        model_values[(b, m, mn, stat)] - model_values[(a, m, mn, stat)]))

    mean, lo, hi = bootstrap(np.stack([v for _, v in columns], axis=1), resamples=config.bootstrap,
                             confidence=config.confidence, seed=config.seed)
    found = {path: {"mean": float(a), "lo": float(b), "hi": float(c)}
             for (path, _), a, b, c in zip(columns, mean, lo, hi)}

    models = {}
    for name, runs in per_image.runs.items():
        entry = {"checkpoints": len(runs), "accuracy": found[("models", name, "accuracy")], "methods": {}}
        if len(runs) > 1:
            entry["accuracy"]["seeds"] = _seeds(np.array([100.0 * r["clean"]["correct"].mean() for r in runs]),
                                                config.confidence)
        for m in methods:
            entry["methods"][m] = {}
            for metric in METRICS:
                mn = METRIC_NAMES[metric]
                block = {"curves": {o: _curve(found, ("models", name, "methods", m, mn, "curves", o), len(levels))
                                    for o in method_orders[m]}}
                for (n, mm, mmn, stat), values in checkpoint_values.items():
                    if (n, mm, mmn) == (name, m, mn):
                        block[stat] = found[("models", name, "methods", m, mn, stat)]
                        if len(runs) > 1:
                            block[stat]["seeds"] = _seeds(values, config.confidence)
                entry["methods"][m][mn] = block
        loc = per_image.localisation.get(name)
        if loc:
            entry["localisation"] = {m: {k: _defined_mean(np.mean([c[m][k] for c in loc], axis=0))
                                         for k in loc[0][m]} for m in loc[0]}  # the random map's too
        if per_image.eraser:
            entry["eraser"] = eraser.summarise(per_image.eraser[name], config)
        models[name] = entry

    differences = []
    for a, b, m, mn, stat in diff_keys:
        d = {"a": a, "b": b, "method": m, "metric": mn, "statistic": stat,
             **found[("differences", a, b, m, mn, stat)]}
        va, vb = checkpoint_values[(a, m, mn, stat)], checkpoint_values[(b, m, mn, stat)]
        if len(va) > 1 and len(vb) > 1:
            dm, dlo, dhi = welch_interval(va[:, None], vb[:, None], config.confidence)
            d["seeds"] = {"mean": float(dm[0]), "lo": float(dlo[0]), "hi": float(dhi[0])}
        differences.append(d)

    return {
        "num_test": per_image.num_images,
        "levels": list(levels),
        "orders": list(orders),
        "methods": list(config.methods),
        "auc_convention": auc_convention(levels),
        "bootstrap": {"resamples": config.bootstrap, "confidence": config.confidence, "seed": config.seed,
                      "over": "test images (percentile interval; paired across models)"},
        "models": models,
        "differences": differences,
    }


def _curve(found: dict, prefix: tuple, num_levels: int) -> dict:
    pts = [found[(*prefix, i)] for i in range(num_levels)]
    return {k: [p[k] for p in pts] for k in ("mean", "lo", "hi")}


def _seeds(values: np.ndarray, confidence: float) -> dict:
    mean, lo, hi = t_interval(values[:, None], confidence)
    return {"mean": float(mean[0]), "lo": float(lo[0]), "hi": float(hi[0]), "values": [float(v) for v in values]}
