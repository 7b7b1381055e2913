"""One pass over the test data that scores every checkpoint with every saliency method.

The result is per image (``results.PerImage``): for each model, checkpoint, saliency method and
order, whether each image is still classified right and its true-class probability at every
level. Every summary (``summary.summarise``) is computed from these arrays.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from . import eraser
from .attribution import attribute
from .config import EvalConfig
from .localization import localisation_scores
from .perturbation import clock, forward, outcome, random_scores, removal_curves
from .results import METRICS, ORDERS, RANDOM, PerImage
from .units import REMOVAL_UNITS

CHANCE_STREAM = len(ORDERS)  # the random map's seed id, apart from the fills' (batch, order) ids


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
    yields (x, y), (x, y, region) or (x, y, region or None, lengths): region bool, per map unit
    ((B, H, W) pixels, (B, T) steps) or per value of x (a series' box); lengths (B,) the real
    steps of padded (B, T, D) sequences. Token ids (B, T) are embedded by each model (its
    ``embed``) and evaluated in embedding space, whole tokens removed. Returns (per_image,
    maps): maps holds the first ``grid_images`` inputs and their unit saliency under each
    model's first checkpoint, maps["saliency"][method][model] as (G, *map shape), for the
    saliency grid. Every model and method sees the same random order and the same fill draws.
    """
    runs = {n: list(m) if isinstance(m, Sequence) else [m] for n, m in models.items()}
    for ms in runs.values():
        for m in ms:
            m.eval()
    keys = config.keys
    acc = {n: [{"clean": {k: [] for k in METRICS}, "curves": {key: {k: [] for k in METRICS} for key in keys}}
               for _ in ms] for n, ms in runs.items()}
    # Localisation per method, and of a seeded uniform map (RANDOM): the chance level beside them.
    loc = {n: [{m: {} for m in (*config.methods, RANDOM)} for _ in ms] for n, ms in runs.items()}
    chance_rng = torch.Generator().manual_seed(_derived_seed(config.seed, CHANCE_STREAM))
    # ERASER's numbers for token ids with a rationale: each method's, and i.i.d. uniform token
    # scores' (chance), drawn from their own stream so the other draws stay as they were.
    ers = {n: [{m: [] for m in (*config.methods, RANDOM)} for _ in ms] for n, ms in runs.items()}
    token_rng = torch.Generator().manual_seed(_derived_seed(config.seed, CHANCE_STREAM + 1))
    timing = {"attribution_s": {m: 0.0 for m in config.methods}, "clean_s": 0.0, "mask_s": 0.0, "forward_s": 0.0}
    rng = torch.Generator().manual_seed(config.seed)
    unit = REMOVAL_UNITS[config.unit]
    per_map = REMOVAL_UNITS[unit.maps]  # the unit of the saliency grid and of the regions
    maps = {"images": [], "labels": [], "saliency": {m: {n: [] for n in runs} for m in config.methods},
            "sequence": unit.dims == 3}
    labels, seen, has_region = [], 0, False
    steps = None if total is None else total * sum(len(ms) for ms in runs.values())
    bar = tqdm(total=steps, desc="evaluate", unit="checkpoint-batch", disable=not config.progress)
    for b, batch in enumerate(batches):
        x, y = batch[0].to(device), batch[1].to(device)
        region = batch[2] if len(batch) > 2 else None
        lengths = batch[3].to(device) if len(batch) > 3 and batch[3] is not None else None
        has_region = region is not None
        text = has_region and not x.is_floating_point()
        token_rnd = torch.rand(x.shape[:2], generator=token_rng).to(x.device) if text else None
        labels.append(y.cpu())
        take = max(0, min(config.grid_images - seen, x.shape[0]))
        if take:
            maps["images"].append(x[:take].cpu())
            maps["labels"].append(y[:take].cpu())
        first = next(iter(runs.values()))[0]
        rnd = (random_scores(x.shape[0], unit.count(model_input(first, x)), rng, x.device)
               if RANDOM in config.orders else None)
        # One fill seed per (batch, order), shared by every model and method.
        seeds = {o: _derived_seed(config.seed, b, ORDERS.index(o)) for o in config.orders}
        if region is not None:
            xm = model_input(first, x)
            chance = localisation_scores(torch.rand(xm.shape, generator=chance_rng).to(x.device), region, xm,
                                         lengths, unit, True)
        for n, ms in runs.items():
            for c, model in enumerate(ms):
                run = acc[n][c]
                if region is not None:
                    _append(loc[n][c][RANDOM], chance)
                xm = model_input(model, x)
                unit.check(xm, "x")
                t0 = clock(x.device)
                logits = forward(model, xm, config.forward_batch, lengths)
                timing["clean_s"] += clock(x.device) - t0
                for k, v in zip(METRICS, outcome(logits, y)):
                    run["clean"][k].append(v.cpu())

                args = (model, xm, y, logits, lengths, run, config, timing)
                if text:  # the fill's seed id apart from the curves' (batch, order) ids
                    erase = _eraser(model, xm, region, lengths, logits, config,
                                    _derived_seed(config.seed, b, len(ORDERS)))
                    ers[n][c][RANDOM].append(erase(token_rnd))
                if rnd is not None:
                    _add_curves(*args, (RANDOM, RANDOM), rnd, seeds[RANDOM])
                for m in config.methods:
                    t0 = clock(x.device)
                    a = attribute(model, xm, y, m, baseline=config.background, data_range=config.data_range,
                                  config=config.attribution, seed=config.seed, lengths=lengths)
                    timing["attribution_s"][m] += clock(x.device) - t0
                    s = unit.scores(a, config.abs)
                    if text:
                        ers[n][c][m].append(erase(eraser.TOKEN.scores(a, config.abs)))
                    for o in config.orders:
                        if o != RANDOM:
                            _add_curves(*args, (m, o), s, seeds[o])
                    if take and c == 0:
                        maps["saliency"][m][n].append(
                            per_map.scores(a[:take], True).reshape(take, *per_map.map_shape(xm)).cpu())
                    if region is not None:
                        _append(loc[n][c][m], localisation_scores(a, region, xm, lengths, unit, config.abs))
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
        localisation=_defined(loc, cat) if has_region else {},
        timing=timing,
        eraser={n: [{m: eraser.concat(v) for m, v in e.items()} for e in es] for n, es in ers.items()} if text else {})
    maps["images"] = torch.cat(maps["images"])
    maps["labels"] = torch.cat(maps["labels"])
    maps["saliency"] = {m: {n: torch.cat(v) for n, v in per.items()} for m, per in maps["saliency"].items()}
    return per_image, maps


def _append(lists: dict, values: dict) -> None:
    for k, v in values.items():
        lists.setdefault(k, []).append(v.cpu())


def _defined(loc: dict, cat) -> dict:
    """The localisation arrays, less the results no image defines for any model and method (a
    series' step level where every truth covers more than half of the steps)."""
    out = {n: [{m: {k: cat(v) for k, v in per.items()} for m, per in lc.items()} for lc in ls] for n, ls in loc.items()}
    arrays = [per for ls in out.values() for lc in ls for per in lc.values()]
    empty = {k for k in arrays[0] if all(np.isnan(per[k]).all() for per in arrays)}
    return {n: [{m: {k: v for k, v in per.items() if k not in empty} for m, per in lc.items()} for lc in ls]
            for n, ls in out.items()}


def model_input(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """What the evaluation ranks and removes: x, or for token ids the model's embeddings of them
    (the space saliency-guided training masks in)."""
    if x.is_floating_point():
        return x
    with torch.no_grad():
        return model.embed(x)


def _eraser(model, x, truth, lengths, logits, config: EvalConfig, seed: int):
    """ERASER's per-document values of one batch for token scores (see ``eraser.score_batch``)."""
    return lambda scores: eraser.score_batch(model, x, scores, truth, lengths, logits, config.imputation,
                                             seed=seed, forward_batch=config.forward_batch)


def _add_curves(model, x, y, logits, lengths, run: dict, config: EvalConfig, timing: dict, key: tuple[str, str],
                scores: torch.Tensor, seed: int) -> None:
    """Appends the batch's removal curves of one (method, order) key to the checkpoint's lists."""
    out = removal_curves(model, x, y, scores, config.levels, order=key[1], imputation=config.imputation,
                         unit=config.unit, seed=seed, clean_logits=logits, forward_batch=config.forward_batch,
                         timing=timing, lengths=lengths)
    for k, v in zip(METRICS, out):
        run["curves"][key][k].append(v.cpu())


def _derived_seed(*ids: int) -> int:
    """A 63-bit seed that depends on every id (SeedSequence mixes them; no two tuples collide in
    practice), non-negative so every backend takes it."""
    return int(np.random.SeedSequence(list(ids)).generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))

