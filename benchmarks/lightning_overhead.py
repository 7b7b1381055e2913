#!/usr/bin/env python
"""What Lightning adds to a SMOOT epoch: one epoch through Lightning (SaliencyGuidedCallback)
against one epoch of ``smoot-train``'s loop, on the same data, model, seed and batches.

  python benchmarks/lightning_overhead.py --data-dir "$SMOOT_DATA_DIR" --subset 15000 --test-subset 2500
  python benchmarks/lightning_overhead.py --dataset digits --repeats 5

Each repeat runs both, one after the other (interleaved, so a busy machine slows both alike):
``smoot_ext.training.loop.train`` with ``epochs=1``, and ``lightning.Trainer.fit`` of a
LightningModule whose ``training_step`` returns ``SaliencyGuidedTraining.loss`` (initial
weights, mask seed, optimizer and batches as ``train``'s: ``make_loader`` with the same seed),
validated on the test split and checkpointed by ``ModelCheckpoint``. The epoch is timed in each:
``train``'s from its loader to its checkpoint (as its ``time_s``: the step loop, the k sync and
the test pass) and Lightning's from ``on_train_epoch_start`` to ``on_train_epoch_end`` after the
k sync (the same parts; the checkpoint comes after in both), by wall and by process CPU time (less moved by other
processes on a shared machine). ``call`` times each call whole (set-up, checkpoint; ``train``
also draws its figures). ``same_k``: both left the same k vector (they did the same work).
Columns: medians over the repeats and the median of the per-repeat ratios Lightning /
smoot-train (target for the epoch: at most 1.05). JSON to --json; rows to
``benchmarks/results/lightning_overhead.csv`` with the load average and --note (say there
whether the machine was shared).
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import tempfile
import time

import lightning.pytorch as pl
import record
import torch
import torch.nn.functional as F
from epoch_overhead import _clock, _Timer  # its timers, as a sibling script (like record)

from smoot_ext.allocator import keep_freed_memory
from smoot_ext.data import default_data_dir, load_dataset, make_loader
from smoot_ext.integrations.lightning import SaliencyGuidedCallback
from smoot_ext.models import build_model
from smoot_ext.training import loop
from smoot_ext.training.guided import GuidedConfig, SaliencyGuidedTraining


class Guided(pl.LightningModule):
    """``train``'s model, step and optimizer as a LightningModule; test loss and accuracy logged."""

    def __init__(self, cfg: loop.TrainConfig, bundle):
        super().__init__()
        torch.manual_seed(cfg.seed)  # train's initial weights
        self.net = build_model(cfg.model, bundle.in_channels, bundle.num_classes, bundle.image_size,
                               pretrained=False)
        self.sgt = SaliencyGuidedTraining(self.net, cfg.guided_for(bundle), num_samples=len(bundle.train),
                                          input_shape=tuple(bundle.train.images.shape[1:]),
                                          seed=cfg.seed * 1_000_003)
        self.cfg = cfg

    def training_step(self, batch, batch_idx):
        x, y, index = batch
        out = self.sgt.loss(x, y, index)
        self.log("train_loss", out.loss, on_step=False, on_epoch=True)
        return out.loss

    def validation_step(self, batch, batch_idx):
        x, y, _ = batch
        logits = self.net(x)
        self.log_dict({"test_loss": F.cross_entropy(logits, y), "test_acc": (logits.argmax(1) == y).float().mean()})

    def configure_optimizers(self):
        return loop._optimizer(self.cfg.optimizer, self.parameters(), self.cfg.lr)


class EpochTimer(pl.Callback):
    """(wall, CPU) seconds from the training epoch's start to its end (listed after the k sync)."""

    def on_train_epoch_start(self, trainer, pl_module):
        self.start = _clock()

    def on_train_epoch_end(self, trainer, pl_module):
        self.seconds = tuple(b - a for a, b in zip(self.start, _clock()))


def lightning_epoch(cfg: loop.TrainConfig, out: str) -> tuple[tuple, float, torch.Tensor]:
    """The epoch's (wall, CPU) seconds and the whole call's wall seconds of one Lightning epoch set
    up as ``train`` sets up its own, and the k vector after it."""
    t0 = time.perf_counter()
    bundle = load_dataset(cfg.dataset, cfg.data_dir, subset=cfg.subset, test_subset=cfg.test_subset, seed=cfg.seed)
    module = Guided(cfg, bundle)
    torch.manual_seed(cfg.seed)  # train's dropout stream
    timer = EpochTimer()
    trainer = pl.Trainer(max_epochs=1, accelerator="cpu", devices=1, default_root_dir=out,
                         logger=pl.loggers.CSVLogger(out), enable_progress_bar=False,
                         enable_model_summary=False, num_sanity_val_steps=0,
                         callbacks=[SaliencyGuidedCallback(), timer,
                                    pl.callbacks.ModelCheckpoint(dirpath=os.path.join(out, "checkpoints"))])
    trainer.fit(module, make_loader(bundle.train, cfg.batch_size, shuffle=True, seed=cfg.seed),
                make_loader(bundle.test, cfg.batch_size, shuffle=False))
    return timer.seconds, time.perf_counter() - t0, module.sgt.k.cpu()


def smoot_train_epoch(cfg: loop.TrainConfig, out: str) -> tuple[tuple, float, torch.Tensor]:
    """The epoch's (wall, CPU) seconds and the whole call's wall seconds of ``smoot-train``'s loop
    for one epoch, and k after it. The epoch: from its loader to its checkpoint (``time_s``)."""
    t0 = time.perf_counter()
    with _Timer(loop, "make_loader") as start, _Timer(loop, "save_checkpoint") as end:
        result = loop.train(dataclasses.replace(cfg, out=out, epochs=1))
    epoch = tuple(b - a for a, b in zip(start.starts[0], end.starts[0]))
    return epoch, time.perf_counter() - t0, result.guided.k.cpu()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=default_data_dir(), help="(default: $SMOOT_DATA_DIR or ./data)")
    p.add_argument("--dataset", default="mnist", help="(default: %(default)s)")
    p.add_argument("--method", default="smoot", choices=("sgt", "smoot"), help="(default: %(default)s)")
    record.add_epoch_arguments(p, "lightning_overhead")
    p.add_argument("--note", default="", help="recorded with the rows, e.g. 'machine shared'")
    args = p.parse_args(argv)
    if args.repeats < 1:
        p.error(f"--repeats: expected an integer >= 1, got {args.repeats}")
    if args.threads:
        torch.set_num_threads(args.threads)
    kept = keep_freed_memory()  # as smoot-train does; one process setting for both
    cfg = loop.TrainConfig(guided=GuidedConfig(method=args.method), dataset=args.dataset, data_dir=args.data_dir,
                           subset=args.subset, test_subset=args.test_subset, batch_size=args.batch_size,
                           threads=args.threads, progress=False).resolved()
    load_start = os.getloadavg()[0]
    reps = []
    for r in range(args.repeats):
        got, k = {}, {}
        with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
            # Alternate which runs first: the first of a pair pays for a cold heap and caches.
            order = (("smoot_train", smoot_train_epoch, a), ("lightning", lightning_epoch, b))
            for name, run, out in order if r % 2 == 0 else order[::-1]:
                epoch, call, k[name] = run(cfg, out)
                got[name] = {"epoch_s": epoch[0], "epoch_cpu_s": epoch[1], "call_s": call}
        # The same work: the same batches, weights and mask draws leave the same k.
        got["same_k"] = torch.equal(k["smoot_train"], k["lightning"])
        got["epoch_ratio"] = got["lightning"]["epoch_s"] / got["smoot_train"]["epoch_s"]
        got["epoch_cpu_ratio"] = got["lightning"]["epoch_cpu_s"] / got["smoot_train"]["epoch_cpu_s"]
        got["call_ratio"] = got["lightning"]["call_s"] / got["smoot_train"]["call_s"]
        reps.append(got)
        print(f"repeat {r + 1}: epoch smoot-train {got['smoot_train']['epoch_s']:.2f}s, Lightning "
              f"{got['lightning']['epoch_s']:.2f}s ({got['epoch_ratio']:.3f}x, CPU "
              f"{got['epoch_cpu_ratio']:.3f}x); whole call "
              f"{got['smoot_train']['call_s']:.2f}s vs {got['lightning']['call_s']:.2f}s "
              f"({got['call_ratio']:.3f}x)", file=sys.stderr)
    med = {f"{who}_{part}": statistics.median(rep[who][part] for rep in reps)
           for who in ("smoot_train", "lightning") for part in ("epoch_s", "epoch_cpu_s", "call_s")}
    med.update({r: statistics.median(rep[r] for rep in reps) for r in ("epoch_ratio", "epoch_cpu_ratio", "call_ratio")})
    result = {"dataset": args.dataset, "method": args.method, "train": cfg.subset, "test": cfg.test_subset,
              "batch_size": args.batch_size, "threads": torch.get_num_threads(), "repeats": args.repeats,
              "freed_memory_kept": kept, "lightning": pl.__version__,
              "load_average": (load_start + os.getloadavg()[0]) / 2, "note": args.note,
              "same_k": all(rep["same_k"] for rep in reps), **med,
              "per_repeat": reps}
    print(f"\nLightning vs smoot-train, {args.dataset} {args.method}, batch {args.batch_size}, "
          f"{torch.get_num_threads()} thread(s), medians of {args.repeats} interleaved repeats:\n"
          f"  epoch  {med['smoot_train_epoch_s']:.2f}s vs {med['lightning_epoch_s']:.2f}s: "
          f"{med['epoch_ratio']:.3f}x (target <= 1.05); CPU time {med['smoot_train_epoch_cpu_s']:.2f}s vs "
          f"{med['lightning_epoch_cpu_s']:.2f}s: {med['epoch_cpu_ratio']:.3f}x\n"
          f"  call   {med['smoot_train_call_s']:.2f}s vs {med['lightning_call_s']:.2f}s: {med['call_ratio']:.3f}x")
    row = {k: v for k, v in result.items() if k != "per_repeat"}
    # No JSON on stdout: the summary above is this script's output.
    path = record.write_outputs("lightning_overhead", result, [row], args.json, args.results, show=False)
    if path:
        print(f"appended to {path}", file=sys.stderr)
    return result


if __name__ == "__main__":
    main()
