"""From checkpoint files to a written report: what `python/evaluate.py` runs."""
from __future__ import annotations

import ctypes
import os
import time
from pathlib import Path

import torch

from .attribution import AttributionConfig
from .plots import plot_curves, plot_saliency_grid
from .report import write_report
from .runner import EvalConfig, evaluate


def keep_freed_memory() -> bool:
    """Stop glibc from handing large freed blocks back to the OS (a process-wide setting, for
    the command-line front ends). Attribution on CPU allocates and frees 40-300 MB of
    activations per pass; by default each such block is an mmap that is unmapped on free and
    page-faulted back in on the next pass, which cost ~40% of the CPU time as system time in
    an MNIST IntegratedGradients run. Returns False where it does not apply (not glibc)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # glibc's mallopt parameter numbers
    return bool(libc.mallopt(m_mmap_threshold, 1 << 30)) and bool(libc.mallopt(m_trim_threshold, (1 << 31) - 1))


def parse_checkpoints(specs: list[str]) -> list[tuple[str | None, str]]:
    """`name=path` or bare `path` (named later by the run's method). Missing files are errors."""
    if not specs:
        raise ValueError("--checkpoints: expected at least one checkpoint path, got none")
    out = []
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep:
            name, path = None, spec
        if not os.path.isfile(path):
            raise FileNotFoundError(f"--checkpoints: checkpoint file {path!r} does not exist")
        out.append((name, path))
    return out


def load_models(checkpoints: list[tuple[str | None, str]], device: str = "cpu") -> dict:
    """{name: (model, meta, path)}; unnamed entries take the run's method ("baseline", "sgt", ...)."""
    from ..training.checkpoint import load_model

    loaded = {}
    for name, path in checkpoints:
        model, meta = load_model(path, map_location=device)
        name = name or meta.get("method") or Path(path).stem
        if name in loaded:
            raise ValueError(f"--checkpoints: two checkpoints are named {name!r}; name them as NAME=PATH")
        loaded[name] = (model, meta, path)
    datasets = {meta["dataset"] for _, meta, _ in loaded.values()}
    if len(datasets) > 1:
        raise ValueError(f"--checkpoints: the checkpoints were trained on different datasets {sorted(datasets)}")
    return loaded


def run_evaluation(checkpoints: list[str], *, out: str, methods, percentages, fill="uniform",
                   unit="pixel", abs=True, dataset=None, data_dir=None, num_test=1000, batch_size=250,
                   seed=0, grid_images=6, attribution=AttributionConfig(), device="cpu") -> dict:
    """Loads the checkpoints and their test set, evaluates, writes JSON/CSV/PNG/markdown to `out`.
    Returns the results dict (with the report paths under "files")."""
    from ..data import load_dataset

    if num_test is not None and num_test < 1:
        raise ValueError(f"--num-test: expected a positive number of test images, got {num_test}")
    if batch_size < 1:
        raise ValueError(f"--batch-size: expected >= 1, got {batch_size}")
    # Check the cheap options before loading anything.
    config = EvalConfig(methods=methods, percentages=percentages, fill=fill, unit=unit, abs=abs, seed=seed,
                        grid_images=grid_images, attribution=attribution)
    loaded = load_models(parse_checkpoints(checkpoints), device)
    meta0 = next(iter(loaded.values()))[1]
    dataset = dataset or meta0["dataset"]
    data_dir = data_dir or meta0.get("config", {}).get("data_dir")
    bundle = load_dataset(dataset, data_dir, seed=seed)
    test = bundle.test
    if num_test is not None and num_test < len(test):
        test = test.subset(num_test, seed)
    x, y, masks = test.images, test.labels, test.masks
    # Black (raw 0) in the data's normalised units, per channel: the removal fill and the baseline.
    config.background = tuple((0.0 - m) / s for m, s in zip(bundle.mean, bundle.std))
    config.data_range = float(x.max() - x.min())

    batches = [(x[i:i + batch_size], y[i:i + batch_size]) + (() if masks is None else (masks[i:i + batch_size],))
               for i in range(0, len(x), batch_size)]
    models = {name: model for name, (model, _, _) in loaded.items()}
    t0, c0 = time.perf_counter(), time.process_time()
    results, maps = evaluate(models, batches, config, device=device, total=len(batches))
    results["timing"] = {"wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0,
                         "threads": torch.get_num_threads()}
    results["dataset"] = dataset
    for name, (_, meta, path) in loaded.items():
        k = meta.get("k_stats") or {}
        results["models"][name]["info"] = {
            "checkpoint": path, "method": meta.get("method"),
            "epoch": meta.get("epoch"), "k_min": _int(k.get("min")), "k_median": _int(k.get("median")),
            "k_max": _int(k.get("max")), "num_units": meta.get("num_units"),
            # The trainer's own last test accuracy, on its (usually full) test set.
            "train_test_acc": None if not meta.get("metrics") else 100.0 * meta["metrics"]["test_acc"],
            "train_test_subset": meta.get("config", {}).get("test_subset")}
    figures = plot_curves(results, out) + plot_saliency_grid(maps, out)
    results["files"] = {k: str(v) for k, v in write_report(results, out, figures).items()}
    results["files"]["figures"] = [str(p) for p in figures]
    return results


def _int(v):
    return None if v is None else int(round(float(v)))

