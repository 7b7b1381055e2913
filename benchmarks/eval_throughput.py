#!/usr/bin/env python
"""Time the faithfulness evaluation of one MNIST CNN checkpoint, as `smoot-evaluate` runs it.

  python benchmarks/eval_throughput.py --checkpoint runs/mnist-baseline/checkpoint.pt --threads 2
  python benchmarks/eval_throughput.py --num-test 500          # a quick run; extrapolated to 10,000
  python benchmarks/eval_throughput.py --num-test 200 --profile   # plus the top ops (torch.profiler)

The default setting is the issue's target: all 10,000 test images, Saliency and
IntegratedGradients, MoRF and LeRF at 10 levels (0, 0.1, ..., 0.9), uniform fill, 2 CPU threads,
in at most 10 minutes. Without --checkpoint it first trains a small baseline CNN on a 5,000-image
MNIST subset for one epoch (the timing does not depend on how well the model is trained).

The table splits the evaluation's wall time into its phases (attribution per method, masking,
forward passes, statistics, writing the report) and gives each per image and, for the removal
curves, per image and level. The wall time of a run on N images is extrapolated to 10,000
images: loading and the report once, the rest in proportion; and, from the process CPU time,
as if the threads had the cores to themselves (on a shared machine the wall time is longer).
Prints the table and a JSON object (also written to --json if given).

--cli runs `smoot-evaluate` itself in a fresh interpreter, as a user does, and adds the phases
outside the evaluation: the interpreter's start, the imports of the command, and the command's
own work around the pipeline (the rows come from the run's timing.json):

  python benchmarks/eval_throughput.py --cli --dataset digits --num-test 0 --methods saliency \
      --orders morf --levels $(python -c "print(*[i / 64 for i in range(64)])")
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import record
import torch

from smoot_ext.allocator import keep_freed_memory
from smoot_ext.data import default_data_dir
from smoot_ext.evaluation import AttributionConfig, EvalConfig
from smoot_ext.evaluation.perturbation import counts_removed
from smoot_ext.evaluation.pipeline import phases, run_evaluation
from smoot_ext.evaluation.statistics import DEFAULT_RESAMPLES

TARGET_IMAGES, TARGET_S = 10_000, 600.0  # the goal: the whole MNIST test set in ten minutes
# The console script's import and run, stamped with the wall clock (shared with this process), so
# the interpreter's start and its exit are told apart from the command.
CLI_DRIVER = ("import sys, time; t0 = time.time(); from smoot_ext.cli.evaluate import main; "
              "t1 = time.time(); rc = main(sys.argv[1:]); "
              "print('CLI_TIMES', t0, t1, time.time(), file=sys.stderr); sys.exit(rc)")


def _train_checkpoint(dataset: str, data_dir: str, out: str, threads: int) -> str:
    from smoot_ext.training import GuidedConfig
    from smoot_ext.training.loop import TrainConfig, train

    subset = 5000 if dataset == "mnist" else None
    print(f"no --checkpoint: training a baseline CNN on {subset or 'all'} {dataset} images for one epoch -> {out}",
          file=sys.stderr)
    train(TrainConfig(guided=GuidedConfig(method="baseline"), dataset=dataset, data_dir=data_dir, epochs=1,
                      subset=subset, threads=threads, progress=False, out=out))
    return os.path.join(out, "checkpoint.pt")


def _cli_argv(ckpt: str, args, out: str) -> list[str]:
    argv = ["--checkpoints", ckpt, "--methods", *args.methods, "--orders", *args.orders,
            "--levels", *map(str, args.levels), "--fill", args.fill, "--num-test", str(args.num_test),
            "--batch-size", str(args.batch_size), "--ig-steps", str(args.ig_steps), "--bootstrap", str(args.bootstrap),
            "--threads", str(args.threads), "--device", args.device, "--data-dir", args.data_dir,
            "--no-progress", "--out", out]
    return argv + (["--forward-batch", str(args.forward_batch)] if args.forward_batch else [])


def run_cli(ckpt: str, args, out: str) -> tuple[dict, dict]:
    """``smoot-evaluate`` in a fresh interpreter: (its results.json with timing.json's phases,
    the phases outside the pipeline)."""
    started = time.time()
    proc = subprocess.run([sys.executable, "-c", CLI_DRIVER, *_cli_argv(ckpt, args, out)],
                          capture_output=True, text=True)
    ended = time.time()
    if proc.returncode:
        raise SystemExit(f"smoot-evaluate failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    t0, t1, t2 = (float(v) for v in proc.stderr.split("CLI_TIMES")[-1].split())
    results = json.loads(open(os.path.join(out, "results.json")).read())
    results["timing"] = json.loads(open(os.path.join(out, "timing.json")).read())
    inside = sum(phases(results["timing"]).values())
    return results, {"interpreter start": t0 - started, "imports (smoot_ext.cli.evaluate)": t1 - t0,
                     "command (arguments, settings, printing)": t2 - t1 - inside, "interpreter exit": ended - t2,
                     "process wall": ended - started}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", help="a CNN checkpoint of --dataset (default: train a small one first)")
    p.add_argument("--dataset", default="mnist", help="(default: %(default)s)")
    p.add_argument("--data-dir", default=default_data_dir(),
                   help="torchvision datasets (default: $SMOOT_DATA_DIR or ./data)")
    p.add_argument("--num-test", type=int, default=TARGET_IMAGES, help="test images, 0 = all (default: %(default)s)")
    p.add_argument("--methods", nargs="+", default=["saliency", "integrated_gradients"])
    p.add_argument("--orders", nargs="+", default=["morf", "lerf"])
    p.add_argument("--levels", nargs="+", type=float, default=[i / 10 for i in range(10)])
    p.add_argument("--fill", default="uniform")
    p.add_argument("--batch-size", type=int, default=250, help="images per attribution batch (default: %(default)s)")
    p.add_argument("--forward-batch", type=int, help="(default: the evaluation's, by the inputs' size)")
    p.add_argument("--ig-steps", type=int, default=AttributionConfig.ig_steps)
    p.add_argument("--bootstrap", type=int, default=DEFAULT_RESAMPLES, help="(default: %(default)s)")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default: %(default)s)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--cli", action="store_true", help="time smoot-evaluate in a fresh interpreter, imports included")
    p.add_argument("--profile", action="store_true", help="print the ops that took the most CPU time (not with --cli)")
    record.add_output_arguments(p, "eval_throughput")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    keep_freed_memory()
    with tempfile.TemporaryDirectory(prefix="eval-throughput-") as tmp:
        ckpt = args.checkpoint or _train_checkpoint(args.dataset, args.data_dir, os.path.join(tmp, "train"),
                                                    args.threads)
        out_dir = os.path.join(tmp, "eval")
        if args.cli:
            results, outside = run_cli(ckpt, args, out_dir)
            wall, cpu = outside.pop("process wall"), float("nan")
        else:
            results, wall, cpu = _in_process(ckpt, args, out_dir)
            outside = {}
        report_bytes = sum(os.path.getsize(os.path.join(out_dir, f)) for f in os.listdir(out_dir))
    out = summarise_timing(results, args, wall, cpu, ckpt, outside)
    out["report_bytes"] = report_bytes
    print_table(out)
    flat = {k: v for k, v in out.items() if isinstance(v, (int, float, str, bool)) or v is None}
    path = record.write_outputs("eval_throughput", out, [flat], args.json, args.results, indent=2)
    if path:
        print(f"appended to {path}")
    return 0


def _in_process(ckpt: str, args, out_dir: str) -> tuple[dict, float, float]:
    """run_evaluation in this process (its imports already paid): (results, wall, CPU seconds)."""
    config = EvalConfig(methods=args.methods, orders=args.orders, levels=args.levels, fill=args.fill,
                        num_test=args.num_test or None, batch_size=args.batch_size, forward_batch=args.forward_batch,
                        bootstrap=args.bootstrap, attribution=AttributionConfig(ig_steps=args.ig_steps),
                        progress=False)
    profiler = None
    if args.profile:
        from torch.profiler import ProfilerActivity, profile
        profiler = profile(activities=[ProfilerActivity.CPU])
        profiler.__enter__()
    t0, c0 = time.perf_counter(), time.process_time()
    results = run_evaluation([ckpt], config, out=out_dir, data_dir=args.data_dir, device=args.device)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    if profiler is not None:
        profiler.__exit__(None, None, None)
        print(profiler.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))
    return results, wall, cpu


def summarise_timing(results: dict, args, wall: float, cpu: float, ckpt: str, outside: dict) -> dict:
    t = results["timing"]
    n = results["num_test"]
    units = next(iter(results["models"].values()))["info"][0]["num_units"]
    removed = sum(k > 0 for k in counts_removed(results["levels"], units))  # levels that need a pass
    curves = len(args.methods) * len(args.orders)
    by_phase = {**outside, **phases(t)}
    by_phase["other"] = wall - sum(by_phase.values())
    per_level = (t["mask_s"] + t["forward_s"]) / (n * removed * curves)
    fixed = wall - sum(v for k, v in phases(t).items() if k != "loading") + t["plots_s"] + t["report_s"]
    return {
        "checkpoint": ckpt, "dataset": args.dataset, "cli": args.cli, "num_test": n, "methods": args.methods,
        "orders": args.orders, "levels": results["levels"], "fill": args.fill, "ig_steps": args.ig_steps,
        "bootstrap": args.bootstrap, "forward_batch": args.forward_batch, "threads": t["threads"],
        "load_average": os.getloadavg()[0], "wall_s": wall, "cpu_s": cpu,
        "phases_s": by_phase,
        "per_image_ms": 1000.0 * (wall - fixed) / n,
        "per_image_per_level_ms": 1000.0 * per_level,
        # Loading, imports, plots and the report are paid about once; the rest grows with the images.
        "extrapolated_10k_s": fixed + (wall - fixed) * TARGET_IMAGES / n,
        # From the process CPU time, as if the threads had the cores to themselves (all of it scaled:
        # the CPU time of the fixed parts is not measured apart, so this errs long).
        "extrapolated_10k_dedicated_s": cpu / t["threads"] * TARGET_IMAGES / n,
        "target_s": TARGET_S,
    }


def print_table(out: dict) -> None:
    n = out["num_test"]
    print(f"\nfaithfulness evaluation{' (smoot-evaluate)' if out['cli'] else ''}: {n} {out['dataset']} test images, "
          f"{' + '.join(out['methods'])}, {'/'.join(out['orders'])} at {len(out['levels'])} levels, "
          f"{out['fill']} fill, "
          f"{out['threads']} threads (load average {out['load_average']:.1f})")
    print(f"{'phase':40s} {'seconds':>9s} {'ms/image':>9s} {'share':>6s}")
    for name, s in out["phases_s"].items():
        print(f"{name:40s} {s:9.2f} {1000 * s / n:9.2f} {100 * s / out['wall_s']:5.1f}%")
    print(f"{'total (wall)':40s} {out['wall_s']:9.2f} {1000 * out['wall_s'] / n:9.2f}")
    if not out["cli"]:
        print(f"{'total (process CPU, all threads)':40s} {out['cpu_s']:9.2f} {1000 * out['cpu_s'] / n:9.2f}")
    print(f"removal curves: {out['per_image_per_level_ms']:.3f} ms per image and level, for each method and "
          "order (mask + forward)")
    if out["dataset"] != "mnist" or out["cli"]:
        return
    verdict = "within" if out["extrapolated_10k_s"] <= out["target_s"] else "OVER"
    print(f"extrapolated to {TARGET_IMAGES} images: {out['extrapolated_10k_s']:.0f} s wall "
          f"({verdict} the {out['target_s']:.0f} s goal); {out['extrapolated_10k_dedicated_s']:.0f} s from the CPU "
          "time, if the threads had the cores to themselves\n")


if __name__ == "__main__":
    sys.exit(main())
