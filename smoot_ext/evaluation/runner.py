"""One pass over the test data that scores every trained model with every saliency method."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from .accuracy_drop import (DEFAULT_PERCENTAGES, auc, check_fill, check_percentages,
                            correct_after_removal, random_scores)
from .attribution import AttributionConfig, attribute, check_methods, unit_scores
from .localization import auroc, precision_at_region

RANDOM = "random"  # the random-ranking baseline's key among the saliency methods


@dataclass
class EvalConfig:
    methods: list[str] = field(default_factory=lambda: ["saliency", "integrated_gradients"])
    percentages: list[float] = field(default_factory=lambda: list(DEFAULT_PERCENTAGES))
    fill: str = "uniform"  # what replaces removed units: the paper's uniform fill (as in training) or the background
    background: tuple = (0.0,)  # black in the data's (normalised) units, per channel; also the attribution baseline
    data_range: float = 1.0  # max - min of the data, scales SmoothGrad/GradientShap noise
    unit: str = "pixel"  # rank and remove whole pixels (all channels) or single features
    abs: bool = True  # rank by |attribution| (the paper's gradient magnitude) or the signed value
    seed: int = 0
    grid_images: int = 6  # how many test images the saliency-map grid shows
    attribution: AttributionConfig = field(default_factory=AttributionConfig)

    def __post_init__(self):
        self.methods = check_methods(self.methods)
        self.percentages = check_percentages(self.percentages)
        check_fill(self.fill)
        self.background = tuple(float(v) for v in torch.as_tensor(self.background).reshape(-1))
        if self.grid_images < 1:
            raise ValueError(f"--grid-images: expected >= 1 image rows, got {self.grid_images}")
        if self.unit not in ("pixel", "feature"):
            raise ValueError(f"--unit: expected 'pixel' or 'feature', got {self.unit!r}")


def evaluate(
    models: Mapping[str, torch.nn.Module],
    batches: Iterable,
    config: EvalConfig,
    *,
    device: str | torch.device = "cpu",
    total: int | None = None,
) -> tuple[dict, dict]:
    """Accuracy-drop curves (and, when the batches carry a region mask, localisation scores).

    `batches` yields (x, y) or (x, y, region) with region (B, H, W) bool. Returns (results,
    maps): results is JSON-ready (accuracy %, curves, AUCs, per model and method); maps holds
    the first `grid_images` images and their unit saliency, maps["saliency"][method][model]
    as (G, H, W), for the Figure-2 grid.
    """
    names = list(models)
    for m in models.values():
        m.eval()
    keys = [RANDOM, *config.methods]
    correct = {n: {m: torch.zeros(len(config.percentages), dtype=torch.int64) for m in keys} for n in names}
    clean = {n: 0 for n in names}
    loc = {n: {m: {"precision_at_region": [], "auroc": []} for m in config.methods} for n in names}
    # Same seed for every model: each model faces the same random ranking and the same fill draws.
    gens = {(n, m): torch.Generator().manual_seed(config.seed) for n in names for m in keys}
    maps = {"images": [], "labels": [], "saliency": {m: {n: [] for n in names} for m in config.methods}}
    seen = 0
    has_region = False
    bar = tqdm(total=None if total is None else total * len(names), desc="evaluate", unit="model-batch")
    for batch in batches:
        x, y = batch[0].to(device), batch[1].to(device)
        region = batch[2] if len(batch) > 2 else None
        has_region = region is not None
        take = max(0, min(config.grid_images - seen, x.shape[0]))
        if take:
            maps["images"].append(x[:take].cpu())
            maps["labels"].append(y[:take].cpu())
        for n in names:
            model = models[n]
            with torch.no_grad():
                clean[n] += int((model(x).argmax(dim=1) == y).sum())
            M = _num_units(x, config.unit)
            rnd = random_scores(x.shape[0], M, gens[(n, RANDOM)], x.device)
            correct[n][RANDOM] += _removal(model, x, y, rnd, config, gens[(n, RANDOM)])
            for m in config.methods:
                a = attribute(model, x, y, m, baseline=config.background, data_range=config.data_range,
                              config=config.attribution, seed=config.seed)
                s = unit_scores(a, unit=config.unit, abs=config.abs)
                correct[n][m] += _removal(model, x, y, s, config, gens[(n, m)])
                if take:
                    maps["saliency"][m][n].append(
                        unit_scores(a[:take], unit="pixel", abs=True).reshape(take, *x.shape[2:]).cpu())
                if region is not None:
                    ps = unit_scores(a, unit="pixel", abs=config.abs)
                    loc[n][m]["precision_at_region"].append(precision_at_region(ps, region).cpu())
                    loc[n][m]["auroc"].append(auroc(ps, region).cpu())
            bar.update(1)
        seen += x.shape[0]
    bar.close()
    if seen == 0:
        raise ValueError("batches: expected at least one test batch, got none")

    results = {
        "num_test": seen,
        "percentages": config.percentages,
        "auc_units": "accuracy-% x fraction removed (percent/100), trapezoid rule; "
                     f"max {config.percentages[-1] - config.percentages[0]:g} for a model at 100%",
        "config": asdict(config),
        "models": {},
    }
    for n in names:
        entry = {"accuracy": 100.0 * clean[n] / seen, "curves": {}}
        for m in keys:
            acc = (100.0 * correct[n][m].double() / seen).tolist()
            curve = {"accuracy": acc, "auc": auc(config.percentages, acc)}
            if has_region and m != RANDOM:
                for metric, vals in loc[n][m].items():
                    curve[metric] = float(np.nanmean(torch.cat(vals).numpy()))
            entry["curves"][m] = curve
        results["models"][n] = entry
    maps["images"] = torch.cat(maps["images"])
    maps["labels"] = torch.cat(maps["labels"])
    maps["saliency"] = {m: {n: torch.cat(v) for n, v in per.items()} for m, per in maps["saliency"].items()}
    return results, maps


def _num_units(x: torch.Tensor, unit: str) -> int:
    return x[0, 0].numel() if unit == "pixel" else x[0].numel()


def _removal(model, x, y, scores, config: EvalConfig, generator) -> torch.Tensor:
    return correct_after_removal(model, x, y, scores, config.percentages, unit=config.unit,
                                 fill=config.fill, background=config.background, generator=generator)
