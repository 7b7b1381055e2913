#!/usr/bin/env python
"""One training step of baseline, SGT and SMOOT beside the official SGT code's step and the
compulsory work, interleaved in one run (paper CNN, MNIST, batches of 256 and 512).

  python benchmarks/train_step.py --data-dir "$SMOOT_DATA_DIR"   # CPU, and CUDA if visible
  python benchmarks/train_step.py --threads 2 --batch-sizes 512 --rounds 20
  python benchmarks/train_step.py --devices cuda --compile

Every entry but the floor is a whole update (loss, backward, Adadelta step) on its own copy of
the model (same initial weights), on the same batch:

- ``baseline``, ``sgt``, ``smoot``: smoot_ext's steps (``SaliencyGuidedTraining.loss``; the
  paper CNN's trunk forwarded once for x, for the saliency and the training loss);
- ``sgt_3fwd``, ``smoot_3fwd``: the same with ``reuse_trunk=False``: three whole forwards of B
  (saliency, x, x_masked), bit for bit the same update;
- ``sgt_shared``, ``smoot_shared``: the same with ``shared_forward=True`` (saliency from the
  training forward; with the paper CNN's dropout the ranking sees train mode);
- ``sgt_2B``: the SGT step as it was first, with one forward of ``[x; x_masked]`` (2B);
- ``peer``: the step of the official SGT code (ayaabdelsalam91/saliency_guided_training, its
  README settings: signed gradient, 50% masked, random fill), as :func:`peer_step` describes;
- ``peer_glibc``: the same step in a child process left on glibc's default allocator, as the
  official script runs (only with ``--allocator kept``, the default);
- ``floor``: the compulsory work, timed in parts: the saliency forward of B (eval mode, graph
  kept), its input-only backward, the train-mode forwards and the backward of the clean and
  masked batches, and the optimizer step every entry pays; the floor is their sum. It bounds
  the steps with three forwards: the default steps share the trunk's forward and go below it.

``--allocator kept`` (default) runs this process as ``smoot-train`` runs: glibc's malloc keeps
freed memory (``smoot_ext.allocator.keep_freed_memory``), for every entry here, the peer
included; ``default`` leaves glibc as it is.

The entries run in rounds, each round once each in a rotated order, so a busy machine slows them
alike. The table gives per entry the median and spread (min-max) of the wall time, the ratio of
medians to the baseline, the ratios to the peers as the median of the per-round ratios (paired:
robust to a neighbour's load that comes and goes), the process CPU time and the minor page
faults per step. It prints a table and a JSON object (also written to --json) and appends one
row per entry to <results>/train_step.csv (record.py: machine, versions, commit, date). Timings on a shared
machine are noisy: compare runs on a quiet one.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import numpy as np
import record
import torch
import torch.nn.functional as F

import smoot_ext
from smoot_ext.allocator import keep_freed_memory
from smoot_ext.data import default_data_dir, load_dataset
from smoot_ext.models import build_model
from smoot_ext.training.guided import GuidedConfig, SaliencyGuidedTraining
from smoot_ext.training.saliency import input_gradient

STEPS = ("baseline", "sgt", "smoot", "sgt_3fwd", "smoot_3fwd", "sgt_shared", "smoot_shared", "sgt_2B",
         "peer", "peer_glibc")
ENTRIES = STEPS + ("floor",)
FLOOR_PARTS = ("saliency_forward", "input_backward", "train_forward_backward", "optimizer_step")
# The CSV's columns after record.environment()'s: per table, then per entry.
TABLE_FIELDS = ("device", "threads", "compile", "allocator", "batch_size", "data", "rounds")
ROW_FIELDS = ("median_ms", "min_ms", "max_ms", "cpu_ms", "page_faults", "vs_baseline", "vs_peer", "vs_peer_glibc")


def _now(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def _faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def _data(data_dir: str, n: int):
    if os.path.isdir(os.path.join(data_dir, "MNIST")):
        train = load_dataset("mnist", data_dir, subset=n).train
        return train.images, train.labels, "mnist"
    g = torch.Generator().manual_seed(0)  # same shapes, random content: timings barely depend on pixels
    return torch.rand(n, 1, 28, 28, generator=g), torch.randint(0, 10, (n,), generator=g), "random"


def _batch(args, device):
    images, labels, source = _data(args.data_dir, args.batch_size)
    return images[:args.batch_size].to(device), labels[:args.batch_size].to(device), source


def _model(device, compile_: bool):
    torch.manual_seed(0)
    model = build_model("cnn", 1, 10, 28).to(device).train()
    run_model = torch.compile(model) if compile_ else model
    return run_model, torch.optim.Adadelta(model.parameters(), lr=1.0)


def _update(opt, loss):
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def guided_step(method: str, x, y, device, compile_: bool, backend: str, **options):
    """A smoot_ext step: ``SaliencyGuidedTraining.loss``, backward, Adadelta."""
    run_model, opt = _model(device, compile_)
    sgt = SaliencyGuidedTraining(run_model, GuidedConfig(method=method, backend=backend, **options),
                                 num_samples=x.shape[0], input_shape=tuple(x.shape[1:]), device=device)
    index = torch.arange(x.shape[0])
    return lambda: _update(opt, sgt.loss(x, y, index).loss), sgt


def peer_step(x, y, device, compile_: bool, fraction: float = 0.5, seed: int = 0):
    """The official SGT code's step with its README settings, written from its description.

    Captum's ``Saliency`` in eval mode on the batch (x requiring grad), the signed gradient
    averaged over channels, on the host; ``torch.topk(largest=False)`` for the k = fraction * M
    lowest; a per-sample Python loop filling those pixels with numpy uniform values between the
    sample's min and max (host round trips per sample); back to train mode; two forwards, of x
    (still requiring grad) and of the masked batch; cross-entropy plus
    ``KLDivLoss(log_target=True, reduction="batchmean")`` on the log-softmax outputs; one backward.
    """
    from captum.attr import Saliency

    run_model, opt = _model(device, compile_)
    kl_loss = torch.nn.KLDivLoss(reduction="batchmean", log_target=True)
    rng = np.random.RandomState(seed)
    saliency = Saliency(run_model)
    k = int(fraction * x[0].numel())

    def step():
        data = x.detach().requires_grad_(True)
        run_model.eval()
        grads = saliency.attribute(data, target=y, abs=False).mean(1).detach().cpu().float()
        flat = data.detach().clone().view(data.shape[0], -1)
        _, idx = torch.topk(grads.view(grads.shape[0], -1), k, dim=1, largest=False)
        for i in range(flat.shape[0]):
            lo, hi = flat[i].min().item(), flat[i].max().item()
            fill = rng.uniform(low=lo, high=hi, size=(idx.shape[1],))
            flat[i][idx[i]] = torch.tensor(fill, dtype=flat.dtype).to(device)
        masked = flat.view(data.shape).detach()
        run_model.train()
        opt.zero_grad()
        out = run_model(data)
        loss = F.cross_entropy(out, y)
        out_masked = run_model(masked)
        loss = loss + kl_loss(F.log_softmax(out_masked, 1), F.log_softmax(out, 1))
        loss.backward()
        opt.step()

    return step


class ChildPeer:
    """The peer step in a child process on glibc's default allocator, one step per call.

    The parent waits (asleep) while the child steps, so the rounds stay interleaved."""

    def __init__(self, args, device):
        cmd = [sys.executable, __file__, "--peer-child", "--devices", device.type,
               "--batch-sizes", str(args.batch_size), "--threads", str(args.threads),
               "--data-dir", args.data_dir] + (["--compile"] if args.compile else [])
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.last = None

    def __call__(self):
        self.proc.stdin.write("step\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the peer_glibc child exited (code {self.proc.wait()})")
        self.last = json.loads(line)  # its own wall, CPU time and faults
        return self.last

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def peer_child(args) -> None:
    device = torch.device(args.devices)
    x, y, _ = _batch(args, device)
    step = peer_step(x, y, device, args.compile)
    for _ in sys.stdin:
        f0, c0, t0 = _faults(), time.process_time(), _now(device)
        step()
        wall = _now(device) - t0
        print(json.dumps({"wall": wall, "cpu": time.process_time() - c0, "faults": _faults() - f0}),
              flush=True)


def floor_parts(x, y, device, compile_: bool):
    """The compulsory work of an SGT step, timed in parts (see the module docstring)."""
    run_model, opt = _model(device, compile_)
    grad = input_gradient(run_model, x, y)
    x_masked, _ = smoot_ext.mask(x, grad, x[0].numel() // 2, unit="pixel", seed=0, offset=0)

    def parts():
        t = [_now(device)]
        run_model.eval()
        xg = x.detach().requires_grad_(True)
        chosen = run_model(xg).gather(1, y.view(-1, 1)).sum()
        t.append(_now(device))
        torch.autograd.grad(chosen, xg)
        t.append(_now(device))
        run_model.train()
        logits, logits_masked = run_model(x), run_model(x_masked)
        log_p = F.log_softmax(logits, 1)
        loss = F.nll_loss(log_p, y) + F.kl_div(F.log_softmax(logits_masked, 1), log_p,
                                               reduction="batchmean", log_target=True)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        t.append(_now(device))
        opt.step()
        t.append(_now(device))
        return {name: b - a for name, a, b in zip(FLOOR_PARTS, t, t[1:])}

    return parts


def measure(entries: dict, device, rounds: int, warmup: int) -> dict:
    """name -> {"wall", "cpu", "faults"}: per-call values over interleaved rounds.

    An entry returning a dict of part times (the floor) also records each part as
    "floor.<part>", its wall time being their sum; the child peer returns its own numbers."""
    names = list(entries)
    rec = {n: {"wall": [], "cpu": [], "faults": []} for n in names}
    for r in range(warmup + rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            f0, c0, t0 = _faults(), time.process_time(), _now(device)
            got = entries[name]()
            wall, cpu, faults = _now(device) - t0, time.process_time() - c0, _faults() - f0
            if r < warmup:
                continue
            if isinstance(entries[name], ChildPeer):
                wall, cpu, faults = got["wall"], got["cpu"], got["faults"]
            elif isinstance(got, dict):
                for part, seconds in got.items():
                    rec.setdefault(f"{name}.{part}", {"wall": []})["wall"].append(seconds)
                wall = sum(got.values())
            rec[name]["wall"].append(wall)
            rec[name]["cpu"].append(cpu)
            rec[name]["faults"].append(faults)
    return rec


def summarise(rec: dict) -> dict:
    def paired(w, ref):
        return statistics.median(a / b for a, b in zip(w, rec[ref]["wall"])) if ref in rec else None

    base = statistics.median(rec["baseline"]["wall"]) if "baseline" in rec else None
    out = {}
    for name, r in rec.items():
        w = r["wall"]
        med = statistics.median(w)
        out[name] = {"median_ms": 1e3 * med, "min_ms": 1e3 * min(w), "max_ms": 1e3 * max(w),
                     "vs_baseline": med / base if base else None,
                     "vs_peer": paired(w, "peer"), "vs_peer_glibc": paired(w, "peer_glibc"),
                     "vs_peer_unpaired": med / statistics.median(rec["peer"]["wall"]) if "peer" in rec else None,
                     "cpu_ms": 1e3 * statistics.median(r["cpu"]) if r.get("cpu") else None,
                     "page_faults": statistics.median(r["faults"]) if r.get("faults") else None}
    return out


def _cell(v, width: int, digits: int) -> str:
    return f"{v:>{width}.{digits}f}" if v is not None else f"{'-':>{width}}"


def print_table(title: str, rows: dict) -> None:
    print(title)
    print(f"{'entry':<30}{'median ms':>10}{'min ms':>9}{'max ms':>9}{'x base':>8}{'x peer':>8}"
          f"{'x glibc':>9}{'CPU ms':>9}{'faults':>9}")
    for name, r in rows.items():
        print(f"{name:<30}{r['median_ms']:>10.1f}{r['min_ms']:>9.1f}{r['max_ms']:>9.1f}"
              f"{_cell(r['vs_baseline'], 8, 2)}{_cell(r['vs_peer'], 8, 2)}"
              f"{_cell(r['vs_peer_glibc'], 9, 2)}{_cell(r['cpu_ms'], 9, 1)}"
              f"{_cell(r['page_faults'], 9, 0)}")
    print("x peer, x glibc: median of the per-round ratios to peer and peer_glibc (paired)")


def csv_rows(run: dict) -> list[dict]:
    """One row per table (device, batch) and entry: what record.append writes to train_step.csv."""
    return [{**{k: table[k] for k in TABLE_FIELDS}, "entry": entry, **{k: row.get(k, "") for k in ROW_FIELDS}}
            for table in run["tables"] for entry, row in table["entries"].items()]


def run_one(device, args, data) -> dict:
    x, y = data[0][:args.batch_size].to(device), data[1][:args.batch_size].to(device)
    kw = dict(device=device, compile_=args.compile, backend=args.backend)
    entries = {}
    for name in args.entries:
        if name == "peer":
            entries[name] = peer_step(x, y, device, args.compile)
        elif name == "peer_glibc":
            if args.allocator == "kept":
                entries[name] = ChildPeer(args, device)
        elif name == "floor":
            entries[name] = floor_parts(x, y, device, args.compile)
        else:
            method, _, variant = name.partition("_")
            entries[name], sgt = guided_step(method, x, y, shared_forward=variant == "shared",
                                             reuse_trunk=variant == "", **kw)
            sgt.one_forward = sgt.one_forward or variant == "2B"
    try:
        rec = measure(entries, device, args.rounds, args.warmup)
    finally:
        for fn in entries.values():
            if isinstance(fn, ChildPeer):
                fn.close()
    return {"device": str(device), "threads": torch.get_num_threads(), "compile": args.compile,
            "allocator": args.allocator, "batch_size": args.batch_size, "data": data[2],
            "rounds": args.rounds, "model": "cnn", "image": "1x28x28", "entries": summarise(rec),
            "backend": {op: args.backend if args.backend != "auto"
                        else smoot_ext.available_backends(device, op)[0] for op in ("mask", "update_k")}}


def _parse(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--devices", default="cpu,cuda",
                   help="comma-separated; cuda is skipped (and said so) where no GPU is visible (default: %(default)s)")
    p.add_argument("--batch-sizes", default="256,512", help="comma-separated (default: %(default)s)")
    p.add_argument("--rounds", type=int, default=12,
                   help="timed rounds, each entry once per round (default: %(default)s)")
    p.add_argument("--warmup", type=int, default=2, help="untimed rounds first (default: %(default)s)")
    p.add_argument("--entries", default=",".join(ENTRIES), help="comma-separated subset (default: all)")
    p.add_argument("--allocator", choices=("kept", "default"), default="kept",
                   help="glibc malloc as smoot-train sets it, or glibc's default (default: %(default)s)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads, 0 = torch's default")
    p.add_argument("--backend", default="auto", help="ops backend (default: %(default)s)")
    p.add_argument("--compile", action="store_true", help="torch.compile the models")
    p.add_argument("--data-dir", default=default_data_dir(),
                   help="torchvision datasets (default: $SMOOT_DATA_DIR or ./data)")
    record.add_output_arguments(p, "train_step")
    p.add_argument("--peer-child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.entries = [e for e in args.entries.split(",") if e]
    unknown = sorted(set(args.entries) - set(ENTRIES))
    if unknown:
        p.error(f"--entries: unknown {', '.join(unknown)}; expected some of {', '.join(ENTRIES)}")
    try:
        args.sizes = [int(b) for b in args.batch_sizes.split(",") if b]
    except ValueError:
        p.error(f"--batch-sizes: expected comma-separated integers, got {args.batch_sizes!r}")
    if not args.sizes or min(args.sizes) < 1:
        p.error(f"--batch-sizes: expected integers >= 1, got {args.batch_sizes!r}")
    for name, v, low in (("--rounds", args.rounds, 1), ("--warmup", args.warmup, 0),
                         ("--threads", args.threads, 0)):
        if v < low:
            p.error(f"{name}: expected an integer >= {low}, got {v}")
    args.device_list = []
    for name in (d for d in args.devices.split(",") if d):
        if name not in ("cpu", "cuda"):
            p.error(f"--devices: expected cpu and/or cuda, got {name!r}")
        if name == "cuda" and not torch.cuda.is_available():
            print("cuda: no GPU visible, not run", file=sys.stderr)
            continue
        args.device_list.append(torch.device(name))
    return args


def main(argv=None):
    args = _parse(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.peer_child:
        args.batch_size = args.sizes[0]
        return peer_child(args)
    if args.allocator == "kept" and not keep_freed_memory():
        print("--allocator kept: not applied (no glibc, or MALLOC_* / GLIBC_TUNABLES set)", file=sys.stderr)
        args.allocator = "default"
    data = _data(args.data_dir, max(args.sizes))
    run = {**record.environment(), "tables": []}
    for device in args.device_list:
        for b in args.sizes:
            args.batch_size = b
            table = run_one(device, args, data)
            run["tables"].append(table)
            print_table(f"\none training step, paper CNN, batch {b} of {data[2]} 28x28, {device}, "
                        f"{table['threads']} thread(s){', torch.compile' if args.compile else ''}, "
                        f"allocator {args.allocator}, ops {table['backend']}, {args.rounds} rounds",
                        table["entries"])
    record.write_outputs("train_step", run, csv_rows(run), args.json, args.results)  # no device ran: no rows, no CSV
    return run


if __name__ == "__main__":
    main()
