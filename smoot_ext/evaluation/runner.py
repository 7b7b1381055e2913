"""One pass over the test data that scores every checkpoint with every saliency method.

The result is per image (``PerImage``): for each model, checkpoint, saliency method and order,
whether each image is still classified right and its true-class probability at every level.
Every summary (``summary.summarise``) is recomputed from these arrays.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from ..ops import num_units
from .attribution import AttributionConfig, attribute, check_methods, unit_scores
from .imputation import ROAD_NOISE, Imputation, check_fill
from .localization import auroc, precision_at_region
from .perturbation import (
    DEFAULT_LEVELS,
    ORDERS,
    check_levels,
    check_orders,
    clock,
    forward,
    outcome,
    random_scores,
    removal_curves,
)
from .statistics import DEFAULT_CONFIDENCE, DEFAULT_RESAMPLES, check_bootstrap

RANDOM = "random"  # the random order's key among the saliency methods (it has no saliency map)
METRICS = ("correct", "probability")  # what the curves record per image and level


@dataclass
class EvalConfig:
    methods: list[str] = field(default_factory=lambda: ["saliency", "integrated_gradients"])
    levels: list[float] = field(default_factory=lambda: list(DEFAULT_LEVELS))  # fractions removed
    orders: list[str] = field(default_factory=lambda: list(ORDERS))
    fill: str = "uniform"  # one of imputation.IMPUTATIONS
    fill_value: tuple | None = None  # the constant fill; None = background
    road_noise: float = ROAD_NOISE
    background: tuple = (0.0,)  # black in the data's (normalised) units, per channel; also the attribution baseline
    data_range: float = 1.0  # max - min of the data, scales SmoothGrad/GradientShap noise
    unit: str = "pixel"  # rank and remove whole pixels (all channels) or single features
    abs: bool = True  # rank by |attribution| (the paper's gradient magnitude) or the signed value
    seed: int = 0  # random order, fill draws, bootstrap
    grid_images: int = 6  # how many test images the saliency-map grid shows
    attribution: AttributionConfig = field(default_factory=AttributionConfig)
    bootstrap: int = DEFAULT_RESAMPLES  # bootstrap resamples of the test images
    confidence: float = DEFAULT_CONFIDENCE
    forward_batch: int = 1024  # images per forward pass of the removal curves
    progress: bool = True

    def __post_init__(self):
        self.methods = check_methods(self.methods)
        self.levels = check_levels(self.levels)
        self.orders = check_orders(self.orders)
        self.fill = check_fill(self.fill)
        self.background = _floats(self.background)
        if self.fill_value is not None:
            self.fill_value = _floats(self.fill_value)
        self.imputation  # noqa: B018  (validates the fill's parameters now, not mid-run)
        check_bootstrap(self.bootstrap, self.confidence)
        if self.grid_images < 1:
            raise ValueError(f"--grid-images: expected >= 1 image rows, got {self.grid_images}")
        if self.unit not in ("pixel", "feature"):
            raise ValueError(f"--unit: expected 'pixel' or 'feature', got {self.unit!r}")
        if self.forward_batch < 1:
            raise ValueError(f"forward_batch: expected >= 1, got {self.forward_batch}")

    @property
    def imputation(self) -> Imputation:
        value = self.background if self.fill_value is None else self.fill_value
        return Imputation(self.fill, value, self.road_noise)

    @property
    def keys(self) -> list[tuple[str, str]]:
        """(method, order) of every curve: the saliency orders per method, then the random one."""
        keys = [(m, o) for m in self.methods for o in self.orders if o != RANDOM]
        return keys + ([(RANDOM, RANDOM)] if RANDOM in self.orders else [])


def _floats(v) -> tuple:
    return tuple(float(a) for a in torch.as_tensor(v).reshape(-1))


@dataclass
class PerImage:
    """Per-image results. ``runs[model][checkpoint]`` holds "clean" {metric: (N,)} and
    "curves" {(method, order): {metric: (N, L)}}; metric "correct" is bool, "probability"
    float32. ``localisation[model][checkpoint][method]`` {"precision_at_region", "auroc": (N,)}
    where the batches carried regions (NaN where a region is empty)."""

    levels: list[float]
    labels: np.ndarray
    index: np.ndarray  # the images' positions in the test set
    runs: dict
    localisation: dict
    timing: dict

    @property
    def num_images(self) -> int:
        return int(self.labels.shape[0])


def evaluate_checkpoints(
    models: Mapping[str, torch.nn.Module | Sequence[torch.nn.Module]],
    batches: Iterable,
    config: EvalConfig,
    *,
    device: str | torch.device = "cpu",
    total: int | None = None,
) -> tuple[PerImage, dict]:
    """Removal curves (and, when the batches carry a region mask, localisation scores).

    ``models`` maps a name to one model or to several checkpoints of it (seeds). ``batches``
    yields (x, y) or (x, y, region) with region (B, H, W) bool. Returns (per_image, maps):
    maps holds the first ``grid_images`` images and their unit saliency under each model's
    first checkpoint, maps["saliency"][method][model] as (G, H, W), for the saliency grid.
    Every model and method sees the same random order and the same fill draws.
    """
    runs = {n: list(m) if isinstance(m, Sequence) else [m] for n, m in models.items()}
    for ms in runs.values():
        for m in ms:
            m.eval()
    keys = config.keys
    acc = {n: [{"clean": {k: [] for k in METRICS}, "curves": {key: {k: [] for k in METRICS} for key in keys}}
               for _ in ms] for n, ms in runs.items()}
    loc = {n: [{m: {"precision_at_region": [], "auroc": []} for m in config.methods} for _ in ms]
           for n, ms in runs.items()}
    timing = {"attribution_s": {m: 0.0 for m in config.methods}, "clean_s": 0.0, "mask_s": 0.0, "forward_s": 0.0}
    rng = torch.Generator().manual_seed(config.seed)
    maps = {"images": [], "labels": [], "saliency": {m: {n: [] for n in runs} for m in config.methods}}
    labels, seen, has_region = [], 0, False
    steps = None if total is None else total * sum(len(ms) for ms in runs.values())
    bar = tqdm(total=steps, desc="evaluate", unit="checkpoint-batch", disable=not config.progress)
    for b, batch in enumerate(batches):
        x, y = batch[0].to(device), batch[1].to(device)
        region = batch[2] if len(batch) > 2 else None
        has_region = region is not None
        labels.append(y.cpu())
        take = max(0, min(config.grid_images - seen, x.shape[0]))
        if take:
            maps["images"].append(x[:take].cpu())
            maps["labels"].append(y[:take].cpu())
        rnd = random_scores(x.shape[0], num_units(x, config.unit), rng, x.device) if RANDOM in config.orders \
            else None
        # One fill seed per (batch, order), shared by every model and method.
        seeds = {o: _derived_seed(config.seed, b, ORDERS.index(o)) for o in config.orders}
        for n, ms in runs.items():
            for c, model in enumerate(ms):
                run = acc[n][c]
                t0 = clock(x.device)
                logits = forward(model, x, config.forward_batch)
                timing["clean_s"] += clock(x.device) - t0
                for k, v in zip(METRICS, outcome(logits, y)):
                    run["clean"][k].append(v.cpu())

                args = (model, x, y, logits, run, config, timing)
                if rnd is not None:
                    _add_curves(*args, (RANDOM, RANDOM), rnd, seeds[RANDOM])
                for m in config.methods:
                    t0 = clock(x.device)
                    a = attribute(model, x, y, m, baseline=config.background, data_range=config.data_range,
                                  config=config.attribution, seed=config.seed)
                    timing["attribution_s"][m] += clock(x.device) - t0
                    s = unit_scores(a, unit=config.unit, abs=config.abs)
                    for o in config.orders:
                        if o != RANDOM:
                            _add_curves(*args, (m, o), s, seeds[o])
                    if take and c == 0:
                        maps["saliency"][m][n].append(
                            unit_scores(a[:take], unit="pixel", abs=True).reshape(take, *x.shape[2:]).cpu())
                    if region is not None:
                        ps = unit_scores(a, unit="pixel", abs=config.abs)
                        loc[n][c][m]["precision_at_region"].append(precision_at_region(ps, region).cpu())
                        loc[n][c][m]["auroc"].append(auroc(ps, region).cpu())
                bar.update(1)
        seen += x.shape[0]
    bar.close()
    if seen == 0:
        raise ValueError("batches: expected at least one test batch, got none")

    def cat(parts):
        return torch.cat(parts).numpy()

    per_image = PerImage(
        levels=list(config.levels), labels=cat(labels), index=np.arange(seen),
        runs={n: [{"clean": {k: cat(v) for k, v in run["clean"].items()},
                   "curves": {key: {k: cat(v) for k, v in per.items()} for key, per in run["curves"].items()}}
                  for run in rs] for n, rs in acc.items()},
        localisation={n: [{m: {k: cat(v) for k, v in per.items()} for m, per in lc.items()} for lc in ls]
                      for n, ls in loc.items()} if has_region else {},
        timing=timing)
    maps["images"] = torch.cat(maps["images"])
    maps["labels"] = torch.cat(maps["labels"])
    maps["saliency"] = {m: {n: torch.cat(v) for n, v in per.items()} for m, per in maps["saliency"].items()}
    return per_image, maps


def _add_curves(model, x, y, logits, run: dict, config: EvalConfig, timing: dict, key: tuple[str, str],
                scores: torch.Tensor, seed: int) -> None:
    """Appends the batch's removal curves of one (method, order) key to the checkpoint's lists."""
    out = removal_curves(model, x, y, scores, config.levels, order=key[1], imputation=config.imputation,
                         unit=config.unit, seed=seed, clean_logits=logits, forward_batch=config.forward_batch,
                         timing=timing)
    for k, v in zip(METRICS, out):
        run["curves"][key][k].append(v.cpu())


def _derived_seed(*ids: int) -> int:
    """A 63-bit seed that depends on every id (SeedSequence mixes them; no two tuples collide in
    practice), non-negative so every backend takes it."""
    return int(np.random.SeedSequence(list(ids)).generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))

