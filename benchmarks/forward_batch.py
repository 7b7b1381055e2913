#!/usr/bin/env python
"""The removal curves' forward batch, timed: where ``FORWARD_BYTES`` (smoot_ext/evaluation/
perturbation.py) comes from, and what our code adds to the forward passes at the same batch.

Per dataset (the trained paper CNN of benchmarks/eval_vs_quantus.py, its larger step) and thread
count: the bare loop that only forwards the perturbed images (eval_vs_quantus' floor) at each of
``--batches`` and at the evaluation's default batch, and ``removal_curves`` at that default;
``--repeats`` interleaved samples (the batch order reversed every other pass), minima and
medians, each relative to the fastest batch's. A sample repeats its call for at least
``MIN_SAMPLE_S``.

  python benchmarks/forward_batch.py                                  # digits, synthetic 16x16
  python benchmarks/forward_batch.py --data-dir "$SMOOT_DATA_DIR"     # plus MNIST 28x28
  python benchmarks/forward_batch.py --default-malloc                 # glibc's malloc as it comes

Prints the table and JSON; rows go to benchmarks/results/forward_batch.csv.
"""
import argparse
import os
import statistics
import sys
import tempfile

import eval_vs_quantus as vq
import record
import torch

from smoot_ext.allocator import freed_memory_kept, keep_freed_memory
from smoot_ext.data import default_data_dir
from smoot_ext.evaluation.perturbation import default_forward_batch


def time_dataset(model, x, y, maps, step: int, fill: float, threads: int, repeats: int, batches) -> list[dict]:
    """One row per batch of the bare loop, and one for removal_curves at the default batch."""
    torch.set_num_threads(threads)
    images = vq.perturbed_images(x, maps, step, fill)
    default = default_forward_batch(x)
    fns = {("floor", b): (lambda b=b: vq.floor_pass(model, images, b)) for b in sorted({*batches, default})}
    fns["removal_curves", default] = lambda: vq.ours(model, x, y, maps, step, fill)
    calls = {key: vq.calls_for(vq.seconds_per_call(fn, 1)) for key, fn in fns.items()}
    samples = {key: [] for key in fns}
    for r in range(repeats):
        for key in (list(fns) if r % 2 == 0 else list(fns)[::-1]):
            samples[key].append(vq.seconds_per_call(fns[key], calls[key]))
    best_min = min(min(v) for (loop, _), v in samples.items() if loop == "floor")
    best_median = min(statistics.median(v) for (loop, _), v in samples.items() if loop == "floor")
    return [{"threads": threads, "step": step, "forwards": len(images), "loop": loop, "batch": batch,
             "default_batch": batch == default, "calls": calls[loop, batch], "min_s": min(v),
             "median_s": statistics.median(v), "over_fastest_min": min(v) / best_min,
             "over_fastest_median": statistics.median(v) / best_median}
            for (loop, batch), v in samples.items()]


def print_table(rows: list[dict]) -> None:
    print(f"\n{'dataset':10s} {'thr':>3s} {'loop':15s} {'batch':>5s} {'s (min / median)':>17s} "
          f"{'/ fastest floor':>15s}")
    for r in rows:
        mark = " (default)" if r["default_batch"] else ""
        print(f"{r['dataset']:10s} {r['threads']:3d} {r['loop']:15s} {r['batch']:5d} "
              f"{r['min_s']:8.4f}/{r['median_s']:8.4f} {r['over_fastest_min']:7.2f}/{r['over_fastest_median']:5.2f}"
              f"{mark}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", help="torchvision datasets; given (or $SMOOT_DATA_DIR), MNIST is a case too")
    p.add_argument("--checkpoint", nargs="+", metavar="DATASET=PATH", help="(default: a short SGT run each)")
    p.add_argument("--datasets", nargs="+", choices=list(vq.CASES), help="(default: all that have data)")
    p.add_argument("--threads", nargs="+", type=int, default=[1, 2], help="(default: %(default)s)")
    p.add_argument("--repeats", type=int, default=5, help="(default: %(default)s)")
    p.add_argument("--batches", nargs="+", type=int, default=list(vq.FLOOR_BATCHES), help="(default: %(default)s)")
    p.add_argument("--default-malloc", action="store_true",
                   help="leave glibc's malloc as it comes (default: keep freed memory, as smoot-evaluate does)")
    record.add_output_arguments(p, "forward_batch")
    args = p.parse_args(argv)
    if not args.default_malloc:
        keep_freed_memory()
    kept = freed_memory_kept()
    data_dir = args.data_dir or os.environ.get("SMOOT_DATA_DIR")
    checkpoints = vq.parse_checkpoints(args.checkpoint)
    rows = []
    with tempfile.TemporaryDirectory(prefix="forward-batch-") as tmp:
        for dataset in args.datasets or [d for d in vq.CASES if d != "mnist" or data_dir]:
            num_test, epochs, steps = vq.CASES[dataset]
            ckpt = checkpoints.get(dataset) or vq.train_checkpoint(dataset, epochs, data_dir or default_data_dir(),
                                                                os.path.join(tmp, dataset))
            model, x, y, maps, fill = vq.load_case(dataset, ckpt, data_dir, num_test)
            for threads in args.threads:
                rows += [{"dataset": dataset, "num_test": len(x), "freed_memory_kept": kept, **r}
                         for r in time_dataset(model, x, y, maps, steps[-1], fill, threads, args.repeats,
                                               args.batches)]
    print_table(rows)
    path = record.write_outputs("forward_batch", {"rows": rows}, rows, args.json, args.results, show=False)
    if path:
        print(f"appended to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
