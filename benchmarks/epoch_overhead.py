#!/usr/bin/env python
"""What an epoch of ``smoot_ext.training.loop.train`` costs beyond its steps timed alone.

  python benchmarks/epoch_overhead.py --data-dir "$SMOOT_DATA_DIR" --methods sgt --batch-size 512
  python benchmarks/epoch_overhead.py --subset 15000 --repeats 3 --methods sgt,smoot

Each repeat, per method: (1) one epoch through ``train`` (``epochs=1``), timed in parts: its
step loop (the epoch's ``time_s`` less the test pass), the test pass, the checkpoint and the
metrics files; (2) the same steps alone: the same initial weights, mask seed and batches in a
bare loop (loss, backward, Adadelta step), each step timed. The epoch costs
``step loop + test + checkpoint + metrics``; the target is at most 1.05x the steps alone.
"drift" is the median step of the last quarter of the bare steps over that of the first
quarter (steps that get dearer as training goes on). Epoch and bare steps alternate, so a busy
machine slows both alike; the table gives medians over the repeats and the median of the
per-repeat ratios (paired); the JSON also goes to --json.

Both run in one process, after ``keep_freed_memory`` (which ``train`` calls); run with
``MALLOC_MMAP_MAX_=65536`` in the environment (glibc's default value, so ``train`` leaves the
allocator alone) to time both under glibc's default allocator.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time

import torch

from smoot_ext.data import load_dataset, make_loader
from smoot_ext.models import build_model
from smoot_ext.training import loop
from smoot_ext.training.guided import METHODS, SaliencyGuidedTraining


class _Timer:
    """Wraps ``owner.name`` to add up the seconds spent in it."""

    def __init__(self, owner, name: str):
        self.owner, self.name, self.seconds = owner, name, 0.0
        self.inner = getattr(owner, name)

    def __enter__(self):
        def timed(*a, **kw):
            t = time.perf_counter()
            try:
                return self.inner(*a, **kw)
            finally:
                self.seconds += time.perf_counter() - t

        setattr(self.owner, self.name, timed)
        return self

    def __exit__(self, *exc):
        setattr(self.owner, self.name, self.inner)


def epoch_parts(cfg: loop.TrainConfig) -> dict:
    """Seconds of one ``train`` epoch's parts (see the module docstring)."""
    with tempfile.TemporaryDirectory() as out, _Timer(loop, "evaluate") as test, \
            _Timer(loop, "save_checkpoint") as ckpt, _Timer(loop, "_write_metrics") as metrics:
        cfg = loop.TrainConfig(**{**vars(cfg), "out": out, "epochs": 1})
        row = loop.train(cfg).history[0]
    return {"steps": row["time_s"] - test.seconds, "test": test.seconds,
            "checkpoint": ckpt.seconds, "metrics": metrics.seconds}


def steps_alone(cfg: loop.TrainConfig, bundle) -> list[float]:
    """Seconds of each of the epoch's steps in a bare loop, set up as ``train`` sets them up."""
    cfg = cfg.resolved()
    torch.manual_seed(cfg.seed)
    model = build_model(cfg.model, bundle.in_channels, bundle.num_classes, bundle.image_size)
    opt = loop._optimizer(cfg.optimizer, model.parameters(), cfg.lr)
    torch.manual_seed(cfg.seed)
    sgt = SaliencyGuidedTraining(model, cfg.guided(bundle.alpha), num_samples=len(bundle.train),
                                 input_shape=tuple(bundle.train.images.shape[1:]),
                                 seed=cfg.seed * 1_000_003)
    model.train()
    times = []
    for x, y, index in make_loader(bundle.train, cfg.batch_size, shuffle=True, seed=cfg.seed):
        t = time.perf_counter()
        out = sgt.loss(x, y, index)
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        opt.step()
        times.append(time.perf_counter() - t)
    return times


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=loop.default_data_dir(), help="(default: $SMOOT_DATA_DIR or ./data)")
    p.add_argument("--dataset", default="mnist", help="(default: %(default)s)")
    p.add_argument("--methods", default="sgt,smoot", help="comma-separated (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=512, help="(default: %(default)s)")
    p.add_argument("--subset", type=int, help="train on this many samples (default: all)")
    p.add_argument("--test-subset", type=int,
                   help="test on this many (default: all; keep the full run's train/test ratio, "
                        "e.g. --subset 15000 --test-subset 2500 for MNIST)")
    p.add_argument("--repeats", type=int, default=3, help="(default: %(default)s)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads, 0 = torch's default")
    p.add_argument("--shared-forward", action="store_true", help="time the shared-forward step")
    p.add_argument("--json", help="also write the JSON result here")
    args = p.parse_args(argv)
    methods = [m for m in args.methods.split(",") if m]
    bad = sorted(set(methods) - set(METHODS))
    if bad:
        p.error(f"--methods: unknown {', '.join(bad)}; expected some of {', '.join(METHODS)}")
    if args.repeats < 1:
        p.error(f"--repeats: expected an integer >= 1, got {args.repeats}")
    if args.threads:
        torch.set_num_threads(args.threads)
    kept = loop.keep_freed_memory()  # as train() does, so that the bare steps run alike
    bundle = load_dataset(args.dataset, args.data_dir, subset=args.subset, test_subset=args.test_subset)
    base = dict(dataset=args.dataset, data_dir=args.data_dir, subset=args.subset,
                test_subset=args.test_subset,
                batch_size=args.batch_size, threads=args.threads, progress=False,
                shared_forward=args.shared_forward)
    runs = {m: {"epoch": [], "alone": [], "drift": []} for m in methods}
    for r in range(args.repeats):
        for m in methods:
            cfg = loop.TrainConfig(method=m, **base)
            runs[m]["epoch"].append(epoch_parts(cfg))
            times = steps_alone(cfg, bundle)
            runs[m]["alone"].append(sum(times))
            quarter = max(1, len(times) // 4)  # drift: do steps get dearer as training goes on?
            runs[m]["drift"].append(statistics.median(times[-quarter:]) / statistics.median(times[:quarter]))
            e = runs[m]["epoch"][-1]
            print(f"repeat {r + 1} {m}: epoch {sum(e.values()):.1f}s ({', '.join(f'{k} {v:.2f}s' for k, v in e.items())}), "
                  f"steps alone {sum(times):.1f}s, last/first quarter step {runs[m]['drift'][-1]:.2f}",
                  file=sys.stderr)
    result = {"dataset": args.dataset, "train": len(bundle.train), "test": len(bundle.test),
              "batch_size": args.batch_size,
              "threads": torch.get_num_threads(), "steps": -(-len(bundle.train) // args.batch_size),
              "freed_memory_kept": kept, "methods": {}}
    print(f"\nepoch vs its steps alone, {args.dataset} {len(bundle.train)} train / "
          f"{len(bundle.test)} test samples, batch "
          f"{args.batch_size}, {torch.get_num_threads()} thread(s), medians of {args.repeats}")
    print(f"{'method':<8}{'epoch s':>9}{'steps s':>9}{'test s':>8}{'ckpt s':>8}{'alone s':>9}"
          f"{'epoch/alone':>13}{'paired':>8}{'steps/alone':>13}{'drift':>7}")
    for m, r in runs.items():
        epoch = [sum(e.values()) for e in r["epoch"]]
        med = {k: statistics.median(e[k] for e in r["epoch"]) for k in r["epoch"][0]}
        alone = statistics.median(r["alone"])
        row = {"epoch_s": statistics.median(epoch), "alone_s": alone, "parts_s": med,
               "epoch_vs_alone": statistics.median(epoch) / alone,
               "epoch_vs_alone_paired": statistics.median(e / a for e, a in zip(epoch, r["alone"])),
               "steps_vs_alone": med["steps"] / alone, "drift": statistics.median(r["drift"]), "raw": r}
        result["methods"][m] = row
        print(f"{m:<8}{row['epoch_s']:>9.1f}{med['steps']:>9.1f}{med['test']:>8.2f}"
              f"{med['checkpoint']:>8.2f}{alone:>9.1f}{row['epoch_vs_alone']:>13.3f}"
              f"{row['epoch_vs_alone_paired']:>8.3f}{row['steps_vs_alone']:>13.3f}{row['drift']:>7.2f}")
    print(json.dumps(result))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    return result


if __name__ == "__main__":
    main()
