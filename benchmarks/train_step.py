#!/usr/bin/env python
"""Time one training step of baseline, SGT and SMOOT side by side (default: paper CNN, MNIST, B=256).

  python benchmarks/train_step.py                        # CPU, real MNIST if --data-dir (default $SMOOT_DATA_DIR) has it
  python benchmarks/train_step.py --device cuda --compile

A step is the whole update: loss (for SGT/SMOOT: input gradient, mask, forward of [x; x_masked],
k update), backward, Adadelta step. The methods run in interleaved rounds, so a busy machine
slows them alike; the table gives the median and the spread (min-max) of the per-step times,
the ratio to the baseline, the process CPU time per step (on a shared machine, closer to the
work done than the wall time), and the mask and update_k ops timed alone on the same batch.
Prints a table and a JSON object (also written to --json if given).
"""
import argparse
import json
import os
import statistics
import sys
import time

import torch

import smoot_ext
from smoot_ext.data import default_data_dir, load_dataset
from smoot_ext.models import build_model
from smoot_ext.training.guided import METHODS, GuidedConfig, SaliencyGuidedTraining
from smoot_ext.training.saliency import input_gradient


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _batch(args, device):
    if os.path.isdir(os.path.join(args.data_dir, "MNIST")):
        train = load_dataset("mnist", args.data_dir, subset=args.batch_size).train
        x, y, source = train.images, train.labels, "mnist"
    else:  # same shapes, random content: timings barely depend on the pixels
        g = torch.Generator().manual_seed(0)
        x, y, source = torch.rand(args.batch_size, 1, 28, 28, generator=g), \
            torch.randint(0, 10, (args.batch_size,), generator=g), "random"
    return x.to(device), y.to(device), torch.arange(args.batch_size), source


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--steps", type=int, default=20, help="timed steps per method (default: %(default)s)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads, 0 = torch's default")
    p.add_argument("--backend", default="auto", help="ops backend (default: %(default)s)")
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--data-dir", default=default_data_dir(), help="torchvision datasets (default: $SMOOT_DATA_DIR or ./data)")
    p.add_argument("--json", help="also write the JSON result here")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    x, y, index, source = _batch(args, device)

    runs = {}
    for method in METHODS:
        torch.manual_seed(0)
        model = build_model("cnn", 1, 10, 28).to(device)
        run_model = torch.compile(model) if args.compile else model
        opt = torch.optim.Adadelta(model.parameters(), lr=1.0)
        sgt = SaliencyGuidedTraining(run_model, GuidedConfig(method=method, backend=args.backend),
                                     num_samples=args.batch_size, input_shape=(1, 28, 28), device=device)
        runs[method] = (sgt, opt, [], [])

    def step(method):
        sgt, opt = runs[method][:2]
        out = sgt.loss(x, y, index)
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        opt.step()

    for _ in range(args.warmup):
        for method in METHODS:
            step(method)
    for _ in range(args.steps):
        for method in METHODS:
            _sync(device)
            t, c = time.perf_counter(), time.process_time()
            step(method)
            _sync(device)
            runs[method][2].append(time.perf_counter() - t)
            runs[method][3].append(time.process_time() - c)

    # The ops alone, on this batch's real saliency and SMOOT's current k.
    sgt = runs["smoot"][0]
    grad = input_gradient(sgt.inner, x, y)
    k = sgt.k[index.to(sgt.k.device)]
    logits = torch.randn(args.batch_size, 10, device=device)
    ops = {"mask": lambda: smoot_ext.mask(x, grad, k, unit="pixel", backend=args.backend, seed=0),
           "update_k": lambda: smoot_ext.update_k(logits, logits + 0.1, k, kmin=156, kmax=627,
                                                  backend=args.backend)}
    op_ms = {}
    for name, fn in ops.items():
        fn()
        times = []
        for _ in range(args.steps):
            _sync(device)
            t = time.perf_counter()
            fn()
            _sync(device)
            times.append(time.perf_counter() - t)
        op_ms[name] = 1000 * statistics.median(times)

    base = statistics.median(runs["baseline"][2])
    result = {"device": str(device), "threads": torch.get_num_threads(), "batch_size": args.batch_size,
              "model": "cnn", "image": "1x28x28", "data": source, "compile": args.compile,
              "backend": {op: args.backend if args.backend != "auto" else smoot_ext.available_backends(device, op)[0]
                          for op in ("mask", "update_k")}, "steps": args.steps,
              "methods": {}, "ops_ms": op_ms}
    print(f"per-step time, paper CNN, batch {args.batch_size} of {source} 28x28, {device}, "
          f"{torch.get_num_threads()} thread(s), ops backends {result['backend']}"
          f"{', torch.compile' if args.compile else ''}, {args.steps} steps each")
    print(f"{'method':<10}{'median ms':>12}{'min ms':>10}{'max ms':>10}{'x baseline':>12}{'CPU ms':>10}")
    for method in METHODS:
        t, cpu = runs[method][2], runs[method][3]
        med = statistics.median(t)
        result["methods"][method] = {"median_ms": 1000 * med, "min_ms": 1000 * min(t),
                                     "max_ms": 1000 * max(t), "vs_baseline": med / base,
                                     "cpu_median_ms": 1000 * statistics.median(cpu)}
        print(f"{method:<10}{1000 * med:>12.1f}{1000 * min(t):>10.1f}{1000 * max(t):>10.1f}"
              f"{med / base:>12.2f}{1000 * statistics.median(cpu):>10.1f}")
    print(f"ops alone: mask {op_ms['mask']:.2f} ms, update_k {op_ms['update_k']:.3f} ms "
          f"({100 * op_ms['mask'] / (1000 * statistics.median(runs['smoot'][2])):.2f}% of a SMOOT step)")
    print(json.dumps(result))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    return result


if __name__ == "__main__":
    main()
