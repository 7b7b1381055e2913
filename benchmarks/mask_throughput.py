"""Throughput of smoot::mask: every available backend against the pure-PyTorch ways users mask
today (stable sort + scatter; topk with the batch's max k), side by side in one run.

Each backend's mask is checked against smoot_ext.reference before it is timed. Prints a table of
median ms, GB/s of compulsory traffic (read x and score, write out and mask) and the speed-up
over the stable-sort baseline; writes the run as JSON and appends it to
benchmarks/results/mask_throughput_<device>.csv with machine, versions, commit and date
(record.py).

    python benchmarks/mask_throughput.py                      # CPU, 2 threads, default shapes
    python benchmarks/mask_throughput.py --device cuda
    python benchmarks/mask_throughput.py --shapes 256,1,784 32,3,150528 --repeats 50
"""
from __future__ import annotations

import argparse
import functools
import os
import statistics
import sys
import time

import record
import torch

import smoot_ext
from smoot_ext import reference

DEFAULT_SHAPES = [(256, 1, 784), (256, 3, 1024), (64, 3, 50176)]


def _fill_uniform(x, masked, gen):
    """The paper's fill, as users write it: random values in the kept range per channel."""
    kept = ~masked.unsqueeze(1)
    lo = torch.where(kept, x, torch.full_like(x, float("inf"))).amin(2, keepdim=True)
    hi = torch.where(kept, x, torch.full_like(x, float("-inf"))).amax(2, keepdim=True)
    r = torch.rand(x.shape, device=x.device, generator=gen, dtype=x.dtype)
    return torch.where(masked.unsqueeze(1), lo + r * (hi - lo), x)


def sort_scatter(x, score, k, gen):
    u = score.float().abs().sum(1)
    order = torch.sort(u, dim=1, stable=True).indices
    rank = torch.empty_like(order).scatter_(1, order, torch.arange(u.shape[1], device=u.device).expand_as(order))
    masked = rank < k.unsqueeze(1)
    return _fill_uniform(x, masked, gen), masked


def topk_maxk(x, score, k, gen):
    u = score.float().abs().sum(1)
    kmax = int(k.max())  # one k for the batch: the largest, then trimmed per row
    idx = torch.topk(u, kmax, dim=1, largest=False, sorted=True).indices
    keep_col = torch.arange(kmax, device=u.device).unsqueeze(0) < k.unsqueeze(1)
    masked = torch.zeros_like(u, dtype=torch.bool).scatter_(1, idx, keep_col)
    return _fill_uniform(x, masked, gen), masked


def backends(device: str, with_reference: bool):
    """name -> fn(x, score, k, gen) for every backend available on ``device``."""
    found = {}
    kw = dict(abs=True, fill="uniform", value=0.0, seed=1234, offset=0)
    for name in smoot_ext.available_backends(device):
        if name == "reference":
            if with_reference:
                found[name] = lambda x, s, k, g: reference.mask(x, s, k, **kw)
        elif name == "triton":
            found[name] = lambda x, s, k, g: torch.ops.smoot.mask_triton(x, s, k, **kw)
        else:
            found[name] = lambda x, s, k, g: torch.ops.smoot.mask(x, s, k, **kw)
    found["torch_sort_scatter"] = sort_scatter
    found["torch_topk_maxk"] = topk_maxk
    return found


def time_all(fns: dict, device: str, repeats: int, warmup: int, rounds: int = 5) -> dict:
    """name -> median wall time of fns[name]() in ms, over `repeats` calls each.

    On the CPU the calls come in `rounds` rounds; in each, every backend runs a block of
    repeats / rounds back-to-back calls after `warmup` untimed ones. Blocks keep what a repeated
    call keeps warm (caches, allocator, thread pool), as in a training loop; the rounds spread
    each backend over the whole run, so that a noisy neighbour slows all of them alike."""
    if device == "cuda":
        import triton.testing

        return {name: triton.testing.do_bench(fn, warmup=25, rep=max(100, repeats), return_mode="median")
                for name, fn in fns.items()}
    times = {name: [] for name in fns}
    per_round = max(1, repeats // rounds)
    for _ in range(rounds):
        for name, fn in fns.items():
            for _ in range(warmup):
                fn()
            for _ in range(per_round):
                t0 = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(t) * 1e3 for name, t in times.items()}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--shapes", nargs="+", default=None, metavar="B,G,M",
                   help=f"shapes (B, G, M) to time; default: {' '.join(','.join(map(str, s)) for s in DEFAULT_SHAPES)}")
    p.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    p.add_argument("--threads", type=int, default=2, help="CPU threads (torch.set_num_threads)")
    p.add_argument("--repeats", type=int, default=30)
    p.add_argument("--warmup", type=int, default=3, help="untimed calls before each block")
    p.add_argument("--with-reference", action="store_true", help="also time the (slow) oracle")
    p.add_argument("--out", default=record.RESULTS, help="folder for the JSON and the appended CSV")
    args = p.parse_args(argv)
    try:
        shapes = [tuple(int(v) for v in s.split(",")) for s in args.shapes] if args.shapes else DEFAULT_SHAPES
        if any(len(s) != 3 or min(s) < 1 for s in shapes):
            raise ValueError
    except ValueError:
        p.error(f"--shapes: expected positive triples B,G,M, got {args.shapes}")
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device: cuda requested but torch sees no GPU")
    torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)
    device_name = torch.cuda.get_device_name() if args.device == "cuda" else f"CPU ({args.threads} threads)"

    rows = []
    for B, G, M in shapes:
        gen = torch.Generator(device=args.device).manual_seed(0)
        x = torch.randn(B, G, M, device=args.device, generator=gen).to(dtype)
        score = torch.randn(B, G, M, device=args.device, generator=gen).to(dtype)
        k = torch.randint(M // 5, 4 * M // 5 + 1, (B,), device=args.device, generator=gen)
        nbytes = 2 * x.nbytes + score.nbytes + B * M  # read x, score; write out, mask (bool)
        ref_mask = reference.select_lowest(reference.unit_scores(score.cpu(), True), k.cpu())
        fns = {}
        for name, fn in backends(args.device, args.with_reference).items():
            out, masked = fn(x, score, k, gen)
            # Our backends must be exact; the users' baselines are timed as they are.
            if not name.startswith("torch_") and not torch.equal(masked.cpu(), ref_mask):
                print(f"{name}: mask differs from the reference at {(B, G, M)}", file=sys.stderr)
                return 1
            fns[name] = functools.partial(fn, x, score, k, gen)
        results = time_all(fns, args.device, args.repeats, args.warmup)
        base = results["torch_sort_scatter"]
        for name, ms in results.items():
            rows.append(dict(device=device_name, dtype=args.dtype, B=B, G=G, M=M, backend=name,
                             median_ms=round(ms, 4), gb_per_s=round(nbytes / ms / 1e6, 2),
                             speedup_vs_sort=round(base / ms, 2)))

    header = f"{'B':>5} {'G':>2} {'M':>7} {'backend':<20} {'median ms':>10} {'GB/s':>8} {'vs sort':>8}"
    print(f"smoot::mask throughput on {device_name}, {args.dtype}, torch {torch.__version__}")
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['B']:>5} {r['G']:>2} {r['M']:>7} {r['backend']:<20} {r['median_ms']:>10.3f} "
              f"{r['gb_per_s']:>8.2f} {r['speedup_vs_sort']:>7.1f}x")
    os.makedirs(args.out, exist_ok=True)
    latest = os.path.join(args.out, f"mask_throughput_{args.device}.json")
    # Its own options: the JSON always goes beside the CSV, named by device; none on stdout.
    path = record.write_outputs(f"mask_throughput_{args.device}", {"environment": record.environment(), "rows": rows},
                                rows, latest, args.out, show=False)
    print(f"wrote {latest}; appended to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
