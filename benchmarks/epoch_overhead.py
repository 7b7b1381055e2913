#!/usr/bin/env python
"""What an epoch of ``smoot_ext.training.loop.train`` costs beyond its steps.

  python benchmarks/epoch_overhead.py --data-dir "$SMOOT_DATA_DIR" --methods sgt --batch-size 512
  python benchmarks/epoch_overhead.py --subset 15000 --test-subset 2500 --repeats 3

Each repeat, per method: (1) one epoch through ``train`` (``epochs=1``), timed in parts: its
steps (each from ``SaliencyGuidedTraining.loss`` to the end of the optimizer's step), the rest
of the step loop (loader, metric sums, the finite-loss check), the test pass, the checkpoint
and the metrics files; (2) the same steps alone: the same initial weights, mask seed and
batches in a bare loop (loss, backward, Adadelta step), each step timed.

Columns (medians over the repeats): the parts in seconds; ``epoch/steps``, all the epoch costs
over what its steps cost in it (the per-epoch overhead; target at most 1.05), by wall and CPU
time; ``step/alone``, the median step in the epoch over the median bare step (do steps cost
more inside the loop?); ``epoch/alone``, the epoch over the bare loop's total (direct, but two
long runs apart: on a busy machine the noisiest); ``drift``, the median bare step of the last
quarter over that of the first (steps that get dearer as training goes on). JSON to --json.

Both run in one process, after ``keep_freed_memory`` (as the command-line trainer does); run with
``MALLOC_MMAP_MAX_=65536`` in the environment (glibc's default value, so ``train`` leaves the
allocator alone) to time both under glibc's default allocator.
"""
from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import tempfile
import time

import record
import torch

from smoot_ext.allocator import keep_freed_memory
from smoot_ext.data import default_data_dir, load_dataset, make_loader
from smoot_ext.models import build_model
from smoot_ext.training import loop
from smoot_ext.training.guided import TRAINING_METHODS, GuidedConfig, SaliencyGuidedTraining


def _clock():
    return time.perf_counter(), time.process_time()


class _Timer:
    """Wraps ``owner.name`` to add up the wall and CPU seconds spent in it, and note when each
    call began and ended."""

    def __init__(self, owner, name: str):
        self.owner, self.name, self.inner = owner, name, getattr(owner, name)
        self.wall = self.cpu = 0.0
        self.starts, self.ends = [], []

    def wrap(self, fn):
        def timed(*a, **kw):
            t = _clock()
            self.starts.append(t)
            try:
                return fn(*a, **kw)
            finally:
                now = _clock()
                self.ends.append(now)
                self.wall += now[0] - t[0]
                self.cpu += now[1] - t[1]

        return timed

    def __enter__(self):
        setattr(self.owner, self.name, self.wrap(self.inner))
        return self

    def __exit__(self, *exc):
        setattr(self.owner, self.name, self.inner)


def epoch_parts(cfg: loop.TrainConfig) -> tuple[dict, list[float]]:
    """(wall, CPU) seconds of one ``train`` epoch's parts (see the module docstring) and the
    wall seconds of each of its steps."""
    made = []

    def optimizer(*a, **kw):  # times the optimizer's step: each step's end
        opt = inner_optimizer(*a, **kw)
        opt.step = step_end.wrap(opt.step)
        made.append(opt)
        return opt

    inner_optimizer = loop._optimizer
    step_end = _Timer(loop, "_optimizer")
    with tempfile.TemporaryDirectory() as out, _Timer(loop, "make_loader") as start, \
            _Timer(SaliencyGuidedTraining, "sync_k") as end, _Timer(loop, "test_loss_and_accuracy") as test, \
            _Timer(loop, "save_checkpoint") as ckpt, _Timer(loop, "write_history") as metrics, \
            _Timer(SaliencyGuidedTraining, "loss") as step_start:
        loop._optimizer = optimizer
        try:
            loop.train(dataclasses.replace(cfg, out=out, epochs=1))
        finally:
            loop._optimizer = inner_optimizer
    # The step loop: from the epoch's loader to the k sync right after its last step.
    loop_time = tuple(b - a for a, b in zip(start.starts[0], end.starts[0]))
    steps = [b[0] - a[0] for a, b in zip(step_start.starts, step_end.ends)]
    steps_cpu = sum(b[1] - a[1] for a, b in zip(step_start.starts, step_end.ends))
    return {"steps": (sum(steps), steps_cpu),
            "loop": (loop_time[0] - sum(steps), loop_time[1] - steps_cpu),
            "test": (test.wall, test.cpu), "checkpoint": (ckpt.wall, ckpt.cpu),
            "metrics": (metrics.wall, metrics.cpu)}, steps


def _config(method: str, args, base: dict) -> loop.TrainConfig:
    return loop.TrainConfig(guided=GuidedConfig(method=method, shared_forward=args.shared_forward), **base)


def steps_alone(cfg: loop.TrainConfig, bundle, limit: int | None = None):
    """(wall, CPU) seconds of the epoch's steps (the first ``limit``) in a bare loop set up as
    ``train`` sets them up, and each step's wall seconds."""
    cfg = cfg.resolved()
    torch.manual_seed(cfg.seed)
    model = build_model(cfg.model, bundle.in_channels, bundle.num_classes, bundle.image_size)
    opt = loop._optimizer(cfg.optimizer, model.parameters(), cfg.lr)
    torch.manual_seed(cfg.seed)
    sgt = SaliencyGuidedTraining(model, cfg.guided_for(bundle), num_samples=len(bundle.train),
                                 input_shape=tuple(bundle.train.images.shape[1:]),
                                 seed=cfg.seed * 1_000_003)
    model.train()
    times = []
    t0 = _clock()
    for x, y, index in make_loader(bundle.train, cfg.batch_size, shuffle=True, seed=cfg.seed):
        if len(times) == limit:
            break
        t = time.perf_counter()
        out = sgt.loss(x, y, index)
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        opt.step()
        times.append(time.perf_counter() - t)
    t1 = _clock()
    return (t1[0] - t0[0], t1[1] - t0[1]), times


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=default_data_dir(), help="(default: $SMOOT_DATA_DIR or ./data)")
    p.add_argument("--dataset", default="mnist", help="(default: %(default)s)")
    p.add_argument("--methods", default="sgt,smoot", help="comma-separated (default: %(default)s)")
    record.add_epoch_arguments(p, "epoch_overhead")
    p.add_argument("--shared-forward", action="store_true", help="time the shared-forward step")
    args = p.parse_args(argv)
    methods = [m for m in args.methods.split(",") if m]
    bad = sorted(set(methods) - set(TRAINING_METHODS))
    if bad:
        p.error(f"--methods: unknown {', '.join(bad)}; expected some of {', '.join(TRAINING_METHODS)}")
    if args.repeats < 1:
        p.error(f"--repeats: expected an integer >= 1, got {args.repeats}")
    if args.threads:
        torch.set_num_threads(args.threads)
    kept = keep_freed_memory()  # as smoot-train does, for the epochs and the bare steps alike
    bundle = load_dataset(args.dataset, args.data_dir, subset=args.subset, test_subset=args.test_subset)
    base = dict(dataset=args.dataset, data_dir=args.data_dir, subset=args.subset,
                test_subset=args.test_subset,
                batch_size=args.batch_size, threads=args.threads, progress=False)
    runs = {m: [] for m in methods}
    for m in methods:  # untimed: the first steps grow the heap and create the oneDNN primitives
        steps_alone(_config(m, args, base), bundle, limit=2)
    for r in range(args.repeats):
        for m in methods:
            cfg = _config(m, args, base)
            parts, in_epoch = epoch_parts(cfg)
            alone, times = steps_alone(cfg, bundle)
            quarter = max(1, len(times) // 4)
            runs[m].append({
                "parts": parts, "alone": alone,
                "epoch": sum(w for w, _ in parts.values()),
                "epoch_cpu": sum(c for _, c in parts.values()),
                # the per-epoch overhead: all the epoch costs over what its steps cost in it
                "overhead": sum(w for w, _ in parts.values()) / parts["steps"][0],
                "overhead_cpu": sum(c for _, c in parts.values()) / parts["steps"][1],
                "step_vs_alone": statistics.median(in_epoch) / statistics.median(times),
                "epoch_vs_alone": sum(w for w, _ in parts.values()) / alone[0],
                "drift": statistics.median(times[-quarter:]) / statistics.median(times[:quarter])})
            got = runs[m][-1]
            print(f"repeat {r + 1} {m}: epoch {got['epoch']:.1f}s ("
                  f"{', '.join(f'{k} {w:.2f}s' for k, (w, _) in parts.items())}), steps alone "
                  f"{alone[0]:.1f}s; epoch/its steps {got['overhead']:.3f} (CPU "
                  f"{got['overhead_cpu']:.3f}), median step in the epoch/alone "
                  f"{got['step_vs_alone']:.3f}", file=sys.stderr)
    result = {"dataset": args.dataset, "train": len(bundle.train), "test": len(bundle.test),
              "batch_size": args.batch_size, "threads": torch.get_num_threads(),
              "steps": -(-len(bundle.train) // args.batch_size), "freed_memory_kept": kept,
              "shared_forward": args.shared_forward, "methods": {}}
    print(f"\nepoch vs its steps, {args.dataset} {len(bundle.train)} train / {len(bundle.test)} "
          f"test samples, batch {args.batch_size}, {torch.get_num_threads()} thread(s), allocator "
          f"{'kept' if kept else 'glibc default'}, medians of {args.repeats} repeats")
    cols = ("epoch", "steps", "loop", "test", "checkpoint")
    print(f"{'method':<8}" + "".join(f"{c[:5] + ' s':>10}" for c in cols) + f"{'epoch/steps':>13}"
          f"{'(CPU)':>7}{'step/alone':>12}{'epoch/alone':>13}{'drift':>7}")
    for m, reps in runs.items():
        med = {k: statistics.median(rep[k] for rep in reps)
               for k in ("epoch", "epoch_cpu", "overhead", "overhead_cpu", "step_vs_alone",
                         "epoch_vs_alone", "drift")}
        med.update({f"{k}_s": statistics.median(rep["parts"][k][0] for rep in reps) for k in cols[1:]})
        result["methods"][m] = {**med, "repeats": reps}
        print(f"{m:<8}{med['epoch']:>10.2f}" + "".join(f"{med[k + '_s']:>10.2f}" for k in cols[1:])
              + f"{med['overhead']:>13.3f}{med['overhead_cpu']:>7.3f}{med['step_vs_alone']:>12.3f}"
              f"{med['epoch_vs_alone']:>13.3f}{med['drift']:>7.2f}")
    scalars = {k: v for k, v in result.items() if k != "methods"}
    rows = [{**scalars, "method": m, **{k: v for k, v in med.items() if k != "repeats"}}
            for m, med in result["methods"].items()]
    path = record.write_outputs("epoch_overhead", result, rows, args.json, args.results)
    if path:
        print(f"appended to {path}", file=sys.stderr)
    return result


if __name__ == "__main__":
    main()
