#!/usr/bin/env python
"""MoRF removal curves side by side with Quantus 0.6.0's PixelFlipping: the same SGT checkpoint,
images and |gradient| maps into both, equality checked, both timed.

  pip install quantus==0.6.0          # the benchmark's only extra, beside smoot_ext[eval]
  python benchmarks/eval_vs_quantus.py                                  # digits, synthetic 16x16
  python benchmarks/eval_vs_quantus.py --data-dir "$SMOOT_DATA_DIR"     # plus MNIST 28x28

Both libraries get the same model object (eval mode, in the layout smoot-evaluate gives it), a
constant fill at the data's background (Quantus' ``perturb_baseline`` as a number: its "black"
is each image's minimum, not a fixed value), the true class's softmax probability and one
feature a pixel (1-channel images). Quantus records the curve after each step, up to
everything removed; ``removal_curves`` from nothing removed up to one step short of everything.
The shared points are compared, and each side runs the same number of forward passes.

- Equality: on tie-free maps (each map replaced by its ranks in our order, so no two pixels
  tie) the curves must be bit-identical, else the benchmark fails. On the raw maps the
  difference is reported with its cause: rows that differ are rows with tied scores, which
  Quantus orders with an unstable ``np.argsort`` and we send to the lower index.
- Speed: per case and thread count, ``--repeats`` interleaved samples of ours, the forward floor
  (a bare loop that only forwards the same perturbed images, at the fastest of
  ``--floor-batches``, swept in the first repeat) and Quantus; minima and medians of the seconds
  per call, ratios of each, and for ours against the floor also the median of each repeat's ratio
  (the two samples taken one after the other, so a slow spell of the machine mostly hits both).
  A sample repeats its call until it lasts ``MIN_SAMPLE_S`` (as timeit does): a case of 30 ms
  timed once is mostly the machine's noise.

Without --checkpoint, each dataset gets a short SGT run first (not timed). Prints the table and
JSON; rows go to benchmarks/results/eval_vs_quantus.csv.
"""
import argparse
import math
import os
import statistics
import sys
import tempfile
import time
import warnings

import numpy as np
import record
import torch

from smoot_ext.allocator import keep_freed_memory
from smoot_ext.data import default_data_dir, load_dataset
from smoot_ext.evaluation.attribution import attribute
from smoot_ext.evaluation.imputation import Imputation, removal_ranks, remove, tile
from smoot_ext.evaluation.perturbation import default_forward_batch, prepare_model, ranking, removal_curves

# dataset: (test images, SGT epochs of the default checkpoint, pixels a step)
CASES = {"digits": (360, 10, (1, 4)), "synthetic": (250, 8, (1, 4)), "mnist": (100, 1, (4, 16))}
QUANTUS_BATCH = 64  # the issue's setting; Quantus' own default is 64 too
FLOOR_BATCHES = (32, 64, 128, 256, 512, 1024)
MIN_SAMPLE_S = 0.5


def train_checkpoint(dataset: str, epochs: int, data_dir: str, out: str) -> str:
    from smoot_ext.training import GuidedConfig
    from smoot_ext.training.loop import TrainConfig, train

    print(f"{dataset}: training SGT for {epochs} epoch(s) -> {out}", file=sys.stderr)
    train(TrainConfig(guided=GuidedConfig(method="sgt"), dataset=dataset, data_dir=data_dir, epochs=epochs,
                      subset=5000 if dataset == "mnist" else None, threads=2, progress=False, out=out))
    return os.path.join(out, "checkpoint.pt")


def load_case(dataset: str, checkpoint: str, data_dir: str, num_test: int):
    """(model, x, y, |gradient| maps (N, M), background value)."""
    from smoot_ext.training.checkpoint import load_model

    model, _ = load_model(checkpoint)
    bundle = load_dataset(dataset, data_dir)
    test = bundle.test.subset(num_test, 0) if num_test < len(bundle.test) else bundle.test
    background = (0.0 - bundle.mean[0]) / bundle.std[0]
    x, y = test.inputs.float(), test.labels
    maps = attribute(model, x, y, "saliency", baseline=(background,), data_range=1.0).abs()
    return prepare_model(model, "cpu"), x, y, maps.reshape(len(x), -1), background


def tie_free(maps: torch.Tensor) -> torch.Tensor:
    """Each row's ranks in our MoRF order (ties to the lower index) as distinct scores."""
    return (maps.shape[1] - removal_ranks(ranking(maps, "morf"))).float()


def ours(model, x, y, maps, step: int, fill: float, batch: int | None = None,
         timing: dict | None = None) -> np.ndarray:
    """(N, M / step) probabilities after removing 0, step, ..., M - step pixels (forward batch:
    the evaluation's default unless given; ``timing``: removal_curves' phase seconds add up there)."""
    m = maps.shape[1]
    levels = [i * step / m for i in range(m // step)]
    _, prob = removal_curves(model, x, y, maps, levels, order="morf", imputation=Imputation("constant", (fill,)),
                             forward_batch=batch, timing=timing)
    return prob.numpy()


def quantus_curves(model, x, y, maps, step: int, fill: float, batch: int = QUANTUS_BATCH) -> np.ndarray:
    """(N, M / step) probabilities after removing step, 2 step, ..., M pixels."""
    import quantus

    warnings.filterwarnings("ignore", message=".*didn't cause change in input", module="quantus")
    metric = quantus.PixelFlipping(features_in_step=step, abs=False, normalise=False, perturb_baseline=fill,
                                   disable_warnings=True, display_progressbar=False)
    out = metric(model=model, x_batch=x.numpy(), y_batch=y.numpy(), a_batch=maps.reshape(x.shape).numpy(),
                 device="cpu", batch_size=batch, softmax=True)
    return np.asarray(out, dtype=np.float32)


def perturbed_images(x, maps, step: int, fill: float) -> torch.Tensor:
    """The images ``ours`` forwards, built once, for the floor."""
    m, n = maps.shape[1], x.shape[0]
    k = torch.arange(1, m // step).repeat_interleave(n) * step
    rep = m // step - 1
    xm, _ = remove(tile(x, rep), tile(ranking(maps, "morf").reshape(x.shape), rep), k, Imputation("constant", (fill,)))
    return torch.cat([x, xm])


def floor_pass(model, images: torch.Tensor, batch: int) -> None:
    """Forward ``images`` (and take the softmax) at ``batch`` inputs a pass."""
    with torch.inference_mode():
        for i in range(0, len(images), batch):
            torch.softmax(model(images[i:i + batch]), dim=1)


def seconds_per_call(fn, calls: int) -> float:
    t0 = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - t0) / calls


def calls_for(seconds: float) -> int:
    """Calls per timed sample so that it lasts MIN_SAMPLE_S: a case of 30 ms timed once is noise."""
    return max(1, math.ceil(MIN_SAMPLE_S / seconds))


def both(model, x, y, maps, step: int, fill: float) -> tuple[np.ndarray, np.ndarray]:
    """The shared points of both curves, each forward pass on one level's N images in both: CPU
    kernels round differently at other batch sizes, which is not what is compared here."""
    n = len(x)
    return ours(model, x, y, maps, step, fill, n)[:, 1:], quantus_curves(model, x, y, maps, step, fill, n)[:, :-1]


def compare(model, x, y, maps, step: int, fill: float) -> dict:
    """Equality on tie-free maps (asserted) and the difference on the raw maps, with its cause."""
    a, b = both(model, x, y, tie_free(maps), step, fill)
    if not np.array_equal(a, b):
        raise AssertionError(f"tie-free maps, step {step}: curves differ by up to {np.abs(a - b).max():.3g} "
                             f"in {int((a != b).any(axis=1).sum())} of {len(a)} rows")
    a, b = both(model, x, y, maps, step, fill)
    differ = (a != b).any(axis=1)
    s = np.sort(maps.numpy(), axis=1)
    tied_rows = (s[:, 1:] == s[:, :-1]).any(axis=1)
    return {"tie_free_equal": True, "raw_max_abs_diff": float(np.abs(a - b).max()),
            "raw_rows_differ": int(differ.sum()), "rows": len(a), "rows_with_ties": int(tied_rows.sum()),
            "differing_rows_all_tied": bool((~differ | tied_rows).all()),
            "tied_pairs": int((s[:, 1:] == s[:, :-1]).sum())}


def time_case(model, x, y, maps, step: int, fill: float, threads, repeats: int, batches) -> list[dict]:
    images = perturbed_images(x, maps, step, fill)
    runs = {t: {"ours": [], "quantus": [], "floor": []} for t in threads}
    calls, best_batch, swept = {}, {}, {}
    phases = {t: {"mask_s": 0.0, "forward_s": 0.0, "calls": 0} for t in threads}  # ours' own split

    def ours_timed(t):
        phases[t]["calls"] += 1
        return ours(model, x, y, maps, step, fill, timing=phases[t])

    for r in range(repeats):  # interleaved: a slow spell of the machine hits every column alike
        for t in threads:
            torch.set_num_threads(t)
            if r == 0:  # the sweep once, then its fastest batch
                swept[t] = {b: seconds_per_call(lambda b=b: floor_pass(model, images, b), 1) for b in batches}
                best_batch[t] = min(swept[t], key=swept[t].get)
            fns = {"ours": lambda t=t: ours_timed(t),  # ours and its floor side by side
                   "floor": lambda b=best_batch[t]: floor_pass(model, images, b),
                   "quantus": lambda: quantus_curves(model, x, y, maps, step, fill)}
            for name, fn in fns.items():
                if (t, name) not in calls:
                    calls[t, name] = calls_for(seconds_per_call(fn, 1))
                runs[t][name].append(seconds_per_call(fn, calls[t, name]))
    return [{**row(t, runs[t], best_batch[t], len(images)),
             **{f"{name}_calls": calls[t, name] for name in runs[t]},
             "ours_removal_ms": 1e3 * phases[t]["mask_s"] / phases[t]["calls"],
             "floor_sweep_s": " ".join(f"{b}:{v:.4f}" for b, v in swept[t].items())} for t in threads]


def row(threads: int, runs: dict, floor_batch: int, forwards: int) -> dict:
    mins = {k: min(v) for k, v in runs.items()}
    meds = {k: statistics.median(v) for k, v in runs.items()}
    return {"threads": threads, "forwards": forwards, "floor_batch": floor_batch,
            **{f"{k}_min_s": v for k, v in mins.items()}, **{f"{k}_median_s": v for k, v in meds.items()},
            "quantus_over_ours_min": mins["quantus"] / mins["ours"],
            "quantus_over_ours_median": meds["quantus"] / meds["ours"],
            "ours_over_floor_min": mins["ours"] / mins["floor"],
            "ours_over_floor_median": meds["ours"] / meds["floor"],
            "ours_over_floor_paired": statistics.median(a / b for a, b in zip(runs["ours"], runs["floor"]))}


def print_table(rows: list[dict]) -> None:
    print(f"\n{'case':28s} {'thr':>3s} {'batch':>5s} {'ours s':>13s} {'Quantus s':>13s} {'floor s':>13s} "
          f"{'Q/ours':>11s} {'ours/floor':>11s} {'paired':>6s} {'removal':>7s}\n(min / median; paired: the "
          f"median of each repeat's ratio; removal: ours' ranking and removing, ms a call)")
    for r in rows:
        case = f"{r['dataset']} N={r['num_test']} {r['step']} px/step"
        print(f"{case:28s} {r['threads']:3d} {r['forward_batch']:5d} "
              f"{r['ours_min_s']:6.3f}/{r['ours_median_s']:6.3f} "
              f"{r['quantus_min_s']:6.3f}/{r['quantus_median_s']:6.3f} "
              f"{r['floor_min_s']:6.3f}/{r['floor_median_s']:6.3f} "
              f"{r['quantus_over_ours_min']:5.2f}/{r['quantus_over_ours_median']:5.2f} "
              f"{r['ours_over_floor_min']:5.2f}/{r['ours_over_floor_median']:5.2f} {r['ours_over_floor_paired']:6.2f} "
              f"{r['ours_removal_ms']:7.2f}")
    for r in {(r["dataset"], r["step"]): r for r in rows}.values():
        print(f"{r['dataset']} step {r['step']}: tie-free maps bit-identical; raw maps differ by up to "
              f"{r['raw_max_abs_diff']:.3g} in {r['raw_rows_differ']} of {r['rows']} rows "
              f"({r['rows_with_ties']} rows hold ties, {r['tied_pairs']} tied neighbours; every differing row "
              f"has ties: {r['differing_rows_all_tied']})")


def parse_checkpoints(items) -> dict:
    out = {}
    for item in items or []:
        name, sep, path = item.partition("=")
        if not sep or name not in CASES:
            raise SystemExit(f"--checkpoint: expected DATASET=PATH with DATASET one of {', '.join(CASES)}, "
                             f"got {item!r}")
        out[name] = path
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", help="torchvision datasets; given (or $SMOOT_DATA_DIR), MNIST is a case too")
    p.add_argument("--checkpoint", nargs="+", metavar="DATASET=PATH", help="(default: a short SGT run each)")
    p.add_argument("--threads", nargs="+", type=int, default=[1, 2], help="(default: %(default)s)")
    p.add_argument("--repeats", type=int, default=5, help="(default: %(default)s)")
    p.add_argument("--floor-batches", nargs="+", type=int, default=list(FLOOR_BATCHES))
    p.add_argument("--datasets", nargs="+", choices=list(CASES), help="(default: all that have data)")
    record.add_output_arguments(p, "eval_vs_quantus")
    args = p.parse_args(argv)
    keep_freed_memory()  # as smoot-evaluate does; process-wide, so Quantus runs with it too
    data_dir = args.data_dir or os.environ.get("SMOOT_DATA_DIR")
    datasets = args.datasets or [d for d in CASES if d != "mnist" or data_dir]
    checkpoints = parse_checkpoints(args.checkpoint)
    rows = []
    with tempfile.TemporaryDirectory(prefix="eval-vs-quantus-") as tmp:
        for dataset in datasets:
            num_test, epochs, steps = CASES[dataset]
            ckpt = checkpoints.get(dataset) or train_checkpoint(dataset, epochs, data_dir or default_data_dir(),
                                                                os.path.join(tmp, dataset))
            model, x, y, maps, fill = load_case(dataset, ckpt, data_dir, num_test)
            for step in steps:
                same = compare(model, x, y, maps, step, fill)
                case = {"dataset": dataset, "num_test": len(x), "step": step, "pixels": maps.shape[1],
                        "forward_batch": default_forward_batch(x), "quantus_batch": QUANTUS_BATCH, **same}
                rows += [{**case, **r} for r in time_case(model, x, y, maps, step, fill, args.threads,
                                                          args.repeats, args.floor_batches)]
    print_table(rows)
    import quantus
    result = {"quantus": quantus.__version__, "rows": rows}
    path = record.write_outputs("eval_vs_quantus", result, [{"quantus": quantus.__version__, **r} for r in rows],
                                args.json, args.results, show=False)
    if path:
        print(f"appended to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
