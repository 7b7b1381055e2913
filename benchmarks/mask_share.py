#!/usr/bin/env python
"""The mask op's share of an SGT / SMOOT training step: a sequence model beside the image CNN.

  python benchmarks/mask_share.py                          # CPU, and CUDA if visible
  python benchmarks/mask_share.py --devices cuda --rounds 50
  python benchmarks/mask_share.py --batch-size 8 --rounds 1 --warmup 0   # a smoke run

Workloads (random data of the datasets' shapes, batches of --batch-size, 256 by default):

- ``cnn``: the paper CNN on 1x28x28 images (MNIST), pixels masked;
- ``lstm``: the LSTM of smoot_ext.models.sequences on (T, D) = (50, 50) series (the time-series
  benchmark's shape), time steps masked (``lstm``) or single elements (``lstm-feature``);
- ``bilstm-text``: the BiLSTM on padded token ids (T = 40, lengths 8..40, the text task's),
  whole tokens masked in embedding space: the padded path of docs/SPEC.md (two op calls).

For each workload and method (sgt, smoot) a round times, one after another: the whole step
(``SaliencyGuidedTraining.loss``, backward, Adadelta step), ``smoot_ext.mask`` alone on that
step's inputs (the batch, its input gradient, the step's k) and, for SMOOT, ``smoot_ext.update_k``
alone. ``share`` is the median mask time over the median step time (``update_k_share`` likewise).
Rounds interleave the workloads, so a busy machine slows them alike; on a shared machine compare
the shares, not the times. It prints a table and a JSON object (also written to --json) and
appends one row per workload and method to <results>/mask_share.csv (record.py).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

import record
import torch

import smoot_ext
from smoot_ext.allocator import keep_freed_memory
from smoot_ext.models import build_model
from smoot_ext.training.guided import GuidedConfig, SaliencyGuidedTraining
from smoot_ext.training.saliency import input_gradient

# name: (model, one sample's shape, mask unit, vocabulary size or None)
WORKLOADS = {"cnn": ("cnn", (1, 28, 28), "pixel", None), "lstm": ("lstm", (50, 50), "pixel", None),
             "lstm-feature": ("lstm", (50, 50), "feature", None),
             "bilstm-text": ("bilstm", (40,), "pixel", 49)}
METHODS = ("sgt", "smoot")


def _now(device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


class Workload:
    """One model, method and batch on one device, with the three things a round times."""

    def __init__(self, name: str, method: str, batch: int, device: torch.device):
        model_name, shape, unit, vocab = WORKLOADS[name]
        torch.manual_seed(0)
        # build_model's (in_channels, image_size): (C, H) of an image, (D, T) of a series, (1, T) of ids
        in_ch, size = (shape[0], shape[1]) if len(shape) == 3 else (shape[-1] if vocab is None else 1, shape[0])
        self.model = build_model(model_name, in_ch, 10, size, pretrained=False, vocab_size=vocab).to(device)
        self.opt = torch.optim.Adadelta(self.model.parameters(), lr=1.0)
        lengths = None if vocab is None else torch.randint(8, shape[0] + 1, (batch,), device=device)
        self.sgt = SaliencyGuidedTraining(self.model, GuidedConfig(method=method, unit=unit),
                                          num_samples=batch, input_shape=shape, device=device, lengths=lengths)
        self.x = (torch.randn(batch, *shape, device=device) if vocab is None else
                  torch.randint(1, vocab, (batch, *shape), device=device))
        self.y = torch.randint(0, 10, (batch,), device=device)
        self.index = torch.arange(batch, device=device)
        self.kw = {} if lengths is None else {"lengths": lengths}
        # What the step masks: the batch, or its embeddings.
        self.inputs = self.x if vocab is None else self.model.embed(self.x).detach()
        self.grad = input_gradient(self.model, self.inputs, self.y, **self.kw)
        self.unit, self.method, self.device = unit, method, device
        self.k = (torch.full((batch,), self.sgt.k_init, dtype=torch.int64, device=device) if lengths is None
                  else lengths // 2)
        with torch.no_grad():
            self.logits = self.model(self.x, **self.kw)
        self.logits_masked = self.logits + torch.randn_like(self.logits)

    def step(self):
        out = self.sgt.loss(self.x, self.y, self.index)
        self.opt.zero_grad(set_to_none=True)
        out.loss.backward()
        self.opt.step()

    def mask(self):
        smoot_ext.mask(self.inputs, self.grad, self.k, unit=self.unit, generator=self.sgt.generator, **self.kw)

    def update_k(self):
        smoot_ext.update_k(self.logits, self.logits_masked, self.k, kmin=self.sgt.kmin, kmax=self.sgt.kmax)

    def parts(self):
        return ("step", "mask") + (("update_k",) if self.method == "smoot" else ())


def run(devices, batch: int, rounds: int, warmup: int) -> list[dict]:
    rows = []
    for device in devices:
        loads = [Workload(n, m, batch, device) for n in WORKLOADS for m in METHODS]
        times = {id(w): {p: [] for p in w.parts()} for w in loads}
        for r in range(warmup + rounds):
            for w in loads[r % len(loads):] + loads[:r % len(loads)]:  # rotated order
                for part in w.parts():
                    t0 = _now(device)
                    getattr(w, part)()
                    if r >= warmup:
                        times[id(w)][part].append((_now(device) - t0) * 1e3)
        for w, (name, method) in zip(loads, [(n, m) for n in WORKLOADS for m in METHODS]):
            med = {p: statistics.median(v) for p, v in times[id(w)].items()}
            rows.append({"device": device.type, "threads": torch.get_num_threads(), "batch_size": batch,
                         "rounds": rounds, "workload": name, "method": method,
                         "step_ms": med["step"], "mask_ms": med["mask"], "share": med["mask"] / med["step"],
                         "update_k_ms": med.get("update_k", ""),
                         "update_k_share": med["update_k"] / med["step"] if "update_k" in med else ""})
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--devices", nargs="+", help="cpu and/or cuda (default: cpu, and cuda if visible)")
    p.add_argument("--batch-size", type=int, default=256, help="(default: %(default)s)")
    p.add_argument("--rounds", type=int, default=10, help="(default: %(default)s)")
    p.add_argument("--warmup", type=int, default=2, help="untimed rounds first (default: %(default)s)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads, 0 = torch's default")
    record.add_output_arguments(p, "mask_share")
    args = p.parse_args(argv)
    for name, value, low in (("--batch-size", args.batch_size, 1), ("--rounds", args.rounds, 1),
                             ("--warmup", args.warmup, 0), ("--threads", args.threads, 0)):
        if value < low:
            p.error(f"{name}: expected an integer >= {low}, got {value}")
    devices = args.devices or (["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
    if "cuda" in devices and not torch.cuda.is_available():
        p.error("--devices: cuda requested but CUDA is not available")
    keep_freed_memory()
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = run([torch.device(d) for d in devices], args.batch_size, args.rounds, args.warmup)
    print(f"{'device':6} {'workload':13} {'method':6} {'step ms':>9} {'mask ms':>9} {'share':>7} "
          f"{'update_k share':>15}")
    for r in rows:
        uk = f"{r['update_k_share']:.2%}" if r["update_k_share"] != "" else "-"
        print(f"{r['device']:6} {r['workload']:13} {r['method']:6} {r['step_ms']:9.2f} {r['mask_ms']:9.3f} "
              f"{r['share']:7.2%} {uk:>15}")
    record.write_outputs("mask_share", {"environment": record.environment(), "rows": rows}, rows, args.json,
                         args.results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
