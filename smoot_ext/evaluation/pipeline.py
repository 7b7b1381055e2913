"""From checkpoint files to a written report: what `smoot-evaluate` runs.

Everything that can be wrong with the input (options, checkpoints, their dataset and input
shape, the output folder) is checked before the first image is scored, and the report is
written into a staging folder that replaces ``out`` only when complete.
"""
from __future__ import annotations

import copy
import json
import os
import time
from dataclasses import asdict
from pathlib import Path

import torch

from .config import EvalConfig
from .output import check_output_folder, staged_folder
from .perturbation import prepare_model
from .plots import plot_removal_curves, plot_saliency_grid
from .report import write_report
from .runner import evaluate_checkpoints, model_input
from .summary import summarise
from .units import SEQUENCE_UNITS

SHAPE_KEYS = ("in_channels", "image_size", "num_classes")  # what a checkpoint's model and its test set share


def parse_checkpoints(specs: list[str]) -> list[tuple[str | None, list[str]]]:
    """`NAME=PATH[,PATH...]` or bare `PATH[,PATH...]` (named later by the run's method); several
    paths are checkpoints of one model (e.g. training seeds). Missing files are errors."""
    if not specs:
        raise ValueError("checkpoints: expected at least one checkpoint path, got none")
    out = []
    for spec in specs:
        name, sep, paths = spec.partition("=")
        if not sep:
            name, paths = None, spec
        if name is not None and (not name or "/" in name):
            raise ValueError(f"checkpoints: model name {name!r} in {spec!r} must be non-empty, without '/'")
        files = [p for p in paths.split(",") if p]
        if not files:
            raise ValueError(f"checkpoints: no checkpoint path in {spec!r}")
        for path in files:
            if not os.path.isfile(path):
                raise FileNotFoundError(f"checkpoints: checkpoint file {path!r} does not exist")
        out.append((name, files))
    return out


def load_models(checkpoints: list[tuple[str | None, list[str]]], device: str = "cpu") -> dict:
    """{name: [(model, meta, path), ...]}; unnamed entries take the run's method ("baseline",
    "sgt", ...). Every checkpoint must come from the same dataset and input shape."""
    loaded = {}
    for name, paths in checkpoints:
        runs = [(*_load(path, device), path) for path in paths]
        name = name or runs[0][1].get("method") or Path(paths[0]).stem
        if name in loaded:
            raise ValueError(f"checkpoints: two entries are named {name!r}; name them as NAME=PATH, or give "
                             "the checkpoints (seeds) of one model together as NAME=PATH,PATH")
        loaded[name] = runs
    first = next(iter(loaded.values()))[0]
    for runs in loaded.values():
        for _, meta, path in runs:
            for key in ("dataset", *SHAPE_KEYS):
                if meta.get(key) != first[1].get(key):
                    raise ValueError(f"checkpoints: {path!r} has {key} {meta.get(key)!r}, but {first[2]!r} "
                                     f"has {first[1].get(key)!r}: every checkpoint must be of one dataset and "
                                     "input shape")
    return loaded


def _load(path: str, device: str):
    from ..training.checkpoint import load_model

    try:
        return load_model(path, map_location=device)
    except ValueError as e:  # load_checkpoint's: unreadable, or not a smoot_ext checkpoint; names the path
        raise ValueError(f"checkpoints: {e}") from e
    except (RuntimeError, KeyError, TypeError, AttributeError) as e:  # its meta does not build its weights' model
        raise ValueError(f"checkpoints: cannot read checkpoint {path!r} (its weights do not fit the model its "
                         f"meta names): {type(e).__name__}: {e}") from e


def check_dataset(loaded: dict, dataset: str) -> None:
    """The checkpoints were trained on `dataset` (checked before loading it)."""
    for runs in loaded.values():
        for _, meta, path in runs:
            if meta.get("dataset") != dataset:
                raise ValueError(f"checkpoints: {path!r} was trained on {meta.get('dataset')!r}, "
                                 f"but the test set is {dataset!r} (dataset)")


def check_input_shape(loaded: dict, dataset: str, bundle) -> None:
    """The checkpoints' models take the test set's inputs and have its classes."""
    want = {"dataset": dataset, **{k: getattr(bundle, k) for k in SHAPE_KEYS}}

    def words(v: dict, images: str) -> str:  # images C x H x W; sequences T steps x D
        c, n = v["in_channels"], v["image_size"]
        return f"{c}x{n}x{n} {images}" if bundle.kind == "image" else f"{n} steps x {c} features"

    for runs in loaded.values():
        for _, meta, path in runs:
            got = {k: meta.get(k) for k in want}
            if got != want:
                raise ValueError(f"checkpoints: {path!r} takes {words(got, 'inputs')} with {got['num_classes']} "
                                 f"classes, but {dataset} has {words(want, 'images')} with {want['num_classes']} "
                                 "classes")


def sequence_unit(config: EvalConfig, kind: str) -> EvalConfig:
    """For sequences, --unit pixel (a whole position) means a time step or token ("step") and
    --unit feature (one value) an element of a series ("element"); images keep theirs."""
    if kind == "image" or config.unit not in SEQUENCE_UNITS:
        return config
    config = copy.copy(config)
    config.unit = SEQUENCE_UNITS[config.unit]
    return config


def run_evaluation(checkpoints: list[str], config: EvalConfig, *, out: str, dataset: str | None = None,
                   data_dir: str | None = None, device: str = "cpu") -> dict:
    """Loads the checkpoints and their test set (``dataset``, default the checkpoints'; from
    ``data_dir``, default the training run's), evaluates them as ``config`` says, writes the
    report (see report.py) to `out`. Returns the results dict (with the report paths under "files")."""
    from ..data import load_dataset

    started = time.perf_counter()
    check_output_folder(out)
    loaded = load_models(parse_checkpoints(checkpoints), device)
    meta0 = next(iter(loaded.values()))[0][1]
    dataset = dataset or meta0["dataset"]
    data_dir = data_dir or meta0.get("config", {}).get("data_dir")
    check_dataset(loaded, dataset)
    bundle = load_dataset(dataset, data_dir, seed=config.seed)
    check_input_shape(loaded, dataset, bundle)
    if config.fill_value is not None and len(config.fill_value) not in (1, bundle.in_channels):
        raise ValueError(f"fill_value: expected 1 value or one per channel ({bundle.in_channels}), "
                         f"got {len(config.fill_value)}")
    test, num_test, seed, batch_size = bundle.test, config.num_test, config.seed, config.batch_size
    positions = torch.arange(len(test))
    if num_test is not None and num_test < len(test):
        positions = test.subset_positions(num_test, seed)
        test = test.subset(num_test, seed)
    x, y, masks, lengths = test.inputs, test.labels, test.masks, test.lengths
    config = copy.copy(sequence_unit(config, bundle.kind))  # the data's own values below; the caller's stays
    # Black (raw 0) in the data's normalised units, per channel: the constant fill and the baseline.
    config.background = tuple((0.0 - m) / s for m, s in zip(bundle.mean, bundle.std))
    models = {name: [prepare_model(model, device) for model, _, _ in runs] for name, runs in loaded.items()}
    # The range of what is removed: for text the first model's embeddings (token ids have no scale).
    xs = model_input(next(iter(models.values()))[0], x.to(device))
    config.data_range = float(xs.max() - xs.min())

    def part(t, i):
        return None if t is None else t[i:i + batch_size]

    batches = [(x[i:i + batch_size], y[i:i + batch_size])
               + (() if masks is None and lengths is None else (part(masks, i),))
               + (() if lengths is None else (part(lengths, i),)) for i in range(0, len(x), batch_size)]
    t0, c0 = time.perf_counter(), time.process_time()
    per_image, maps = evaluate_checkpoints(models, batches, config, device=device, total=len(batches))
    per_image.index = positions.numpy()
    t1 = time.perf_counter()
    results = summarise(per_image, config)
    timing = {"wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0, "loading_s": t0 - started,
              "scoring_s": t1 - t0, "statistics_s": time.perf_counter() - t1,
              "threads": torch.get_num_threads(), **per_image.timing}
    results.update(dataset=dataset, config=asdict(config), timing=timing)
    for name, runs in loaded.items():
        results["models"][name]["info"] = [_info(meta, path) for _, meta, path in runs]
    out = Path(out)
    t2 = time.perf_counter()
    with staged_folder(out) as stage:
        figures = plot_removal_curves(results, stage) + plot_saliency_grid(maps, stage)
        t3 = time.perf_counter()
        written = write_report(results, per_image, stage, figures)
    # After results.json was written: in the returned dict and timing.json.
    timing.update(plots_s=t3 - t2, report_s=time.perf_counter() - t3)
    (out / "timing.json").write_text(json.dumps(timing, indent=1) + "\n")
    results["files"] = {k: str(out / p.name) for k, p in written.items()}
    results["files"]["figures"] = [str(out / p.name) for p in figures]
    return results


def phases(timing: dict) -> dict[str, float]:
    """The evaluation's wall time by phase, in seconds, in the order they run; "scoring: other"
    is the rest of the scoring loop (localisation, moving batches)."""
    out = {"loading": timing["loading_s"], "clean forward": timing["clean_s"]}
    out.update({f"attribution: {m}": s for m, s in timing["attribution_s"].items()})
    out.update({"removal: masking": timing["mask_s"], "removal: forwards": timing["forward_s"]})
    out["scoring: other"] = timing["scoring_s"] - sum(v for k, v in out.items() if k != "loading")
    out.update({"bootstrap": timing["statistics_s"], "plots": timing["plots_s"], "report": timing["report_s"]})
    return out


def _info(meta: dict, path: str) -> dict:
    k = meta.get("k_stats") or {}
    return {"checkpoint": path, "method": meta.get("method"), "epoch": meta.get("epoch"),
            "k_min": _int(k.get("min")), "k_median": _int(k.get("median")), "k_max": _int(k.get("max")),
            "num_units": meta.get("num_units"),
            # The trainer's own last test accuracy, on its (usually full) test set.
            "train_test_acc": None if not meta.get("metrics") else 100.0 * meta["metrics"]["test_acc"],
            "train_test_subset": meta.get("config", {}).get("test_subset")}


def _int(v):
    return None if v is None else int(round(float(v)))
