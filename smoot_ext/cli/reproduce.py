"""Train baseline, SGT and SMOOT over several seeds, score every final checkpoint, and compare.

  smoot-reproduce --dataset mnist --data-dir "$SMOOT_DATA_DIR" --epochs 3 --seeds 0 1 2 \\
      --k-rounding floor trunc --fills uniform road --num-test 0 --ig-num-test 1000 \\
      --out runs/mnist-compare --results docs/results/mnist

Runs: one per --training method and seed, and for SMOOT one per --k-rounding ("smoot" is the
paper's floor, "smoot-trunc" rounds the k step toward zero). Each trains into
<out>/<run>/seed<S>/ (checkpoint.pt, metrics, plots; see smoot-train --help) and is resumed from
its checkpoint up to --epochs, so the paper's scale is the same command with --epochs 100.

Each final checkpoint is then scored (smoot-evaluate's pipeline, into <out>/<run>/seed<S>/eval-*)
with every --fills imputation: --methods on --num-test test images (0 = all), except
integrated_gradients on --ig-num-test (a seeded subset, the same for every run); MoRF and LeRF
everywhere, the random order with the first fill only. The small
result, <results>/<run>/seed<S>.json (history, k per epoch, AUCs, SRG), is written when the run
is complete; a run whose file already holds this many epochs and these settings is skipped, so
an interrupted comparison continues where it stopped. Last, <results>/summary.{md,json,csv} and
plots compare the runs over seeds (smoot_ext.evaluation.comparison).
"""
import argparse
import json
import os
import shutil
import sys
from pathlib import Path

import torch

from ..allocator import keep_freed_memory
from ..checks import ROUNDINGS
from ..data import DATASETS, default_data_dir
from ..evaluation import DEFAULT_PERCENTAGES, IMPUTATIONS, ORDERS, RANDOM, AttributionConfig
from ..evaluation.comparison import (
    compact_scores,
    read_score_files,
    run_name,
    score_path,
    summarise_runs,
    write_score_file,
    write_summary,
)
from ..evaluation.pipeline import run_evaluation
from ..evaluation.plots import plot_k_trajectories, plot_removal_curves_over_seeds
from ..training.guided import TRAINING_METHODS
from ..training.loop import NonFiniteLoss, TrainConfig, train

IG = "integrated_gradients"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    a = p.add_argument
    a("--dataset", choices=DATASETS, default="mnist", help="(default: %(default)s)")
    a("--data-dir", default=default_data_dir(), help="torchvision datasets' folder (default: %(default)s)")
    a("--training", nargs="+", default=list(TRAINING_METHODS), choices=TRAINING_METHODS,
      help="training methods to compare (default: all three)")
    a("--k-rounding", nargs="+", default=["floor"], choices=ROUNDINGS,
      help="SMOOT's k step rounding, one SMOOT run per value (default: floor, the paper's formula)")
    a("--epochs", type=int, default=1, help="epochs per training run (default: %(default)s; the paper: 100)")
    a("--seeds", nargs="+", type=int, default=[0], help="training seeds, one run each (default: 0)")
    a("--subset", type=int, help="train on this many training samples (default: all)")
    a("--batch-size", type=int, help="training batch (default: the trainer's, 256 as in the paper)")
    a("--methods", nargs="+", default=["saliency", IG], help="saliency methods scored")
    a("--percentages", nargs="+", type=float, default=list(DEFAULT_PERCENTAGES))
    a("--fills", nargs="+", default=["uniform"], choices=IMPUTATIONS,
      help="removal fills of the evaluation, each scored (default: uniform)")
    a("--num-test", type=int, default=1000, help="test images scored; 0 = all (default: %(default)s)")
    a("--ig-num-test", type=int, help="test images scored with integrated_gradients (default: --num-test)")
    a("--eval-seed", type=int, default=0, help="the test subset, random order and fill draws (default: 0)")
    a("--ig-steps", type=int, default=AttributionConfig.ig_steps)
    a("--device", default="cpu")
    a("--threads", type=int, default=0, help="torch CPU threads, 0 = torch's default")
    a("--no-progress", dest="progress", action="store_false")
    a("--compare-only", action="store_true",
      help="train and score nothing: compare the runs whose score files are done (while a long comparison "
           "still runs elsewhere, or after it was stopped)")
    a("--out", default="runs/reproduce", help="training runs and full evaluation reports (default: %(default)s)")
    a("--results", help="the small per-run score files and the summary (default: <out>/results)")
    return p


def planned_runs(args) -> list[tuple[str, str, str]]:
    """(run name, method, k rounding) of every run, in --training order."""
    runs = []
    for method in args.training:
        for rounding in (args.k_rounding if method == "smoot" else ["floor"]):
            runs.append((run_name(method, rounding), method, rounding))
    return runs


def evaluation_passes(args) -> list[tuple[list[str], int | None]]:
    """(methods, number of test images or None for all): IG may get its own subset."""
    ig_num = args.num_test if args.ig_num_test is None else args.ig_num_test
    rest = [m for m in args.methods if m != IG]
    passes = [(rest, args.num_test or None)] if rest else []
    if IG in args.methods:
        if passes and ig_num == args.num_test:
            passes[0] = (args.methods, args.num_test or None)
        else:
            passes.append(([IG], ig_num or None))
    return passes


def orders_of(args, fill: str, pass_index: int) -> list[str]:
    """The random order (the same for every saliency method) once: in the first pass of the
    first fill; elsewhere MoRF and LeRF, which are all SRG needs."""
    first = fill == args.fills[0] and pass_index == 0
    return [o for o in ORDERS if first or o != RANDOM]


def settings(args) -> dict:
    """What a score file must match to count as done (besides its epochs)."""
    return {"dataset": args.dataset, "subset": args.subset, "batch_size": args.batch_size,
            "methods": sorted(args.methods), "fills": sorted(args.fills), "percentages": list(args.percentages),
            "num_test": args.num_test, "ig_num_test": args.ig_num_test, "eval_seed": args.eval_seed,
            "ig_steps": args.ig_steps,
            "orders": {f: [orders_of(args, f, i) for i in range(len(evaluation_passes(args)))] for f in args.fills}}


def matches(record: dict, args) -> bool:
    """A score file's record is done for this command: the same epochs and settings."""
    return record.get("epochs") == args.epochs and record.get("settings") == settings(args)


def is_done(path: Path, args) -> bool:
    return path.is_file() and matches(json.loads(path.read_text()), args)


def check_same_test_set(part: dict, history: list[dict], num_test: int | None, ckpt: str) -> None:
    """The evaluation's clean accuracy on the whole test set is the trainer's last test accuracy
    (to a few flipped predictions): otherwise the model is being scored on another task."""
    trained = 100.0 * history[-1]["test_acc"]
    if num_test is None and abs(part["accuracy"]["mean"] - trained) > 1.0:
        raise ValueError(f"{ckpt}: accuracy {part['accuracy']['mean']:.2f}% on the evaluation's test set, but "
                         f"{trained:.2f}% when it was trained: the two test sets differ")


def one_run(args, run: str, method: str, rounding: str, seed: int) -> None:
    run_dir = os.path.join(args.out, run, f"seed{seed}")
    ckpt = os.path.join(run_dir, "checkpoint.pt")
    print(f"== training {run}, seed {seed} -> {run_dir}", file=sys.stderr)
    history = train(TrainConfig(dataset=args.dataset, data_dir=args.data_dir, method=method, k_rounding=rounding,
                      epochs=args.epochs, subset=args.subset, batch_size=args.batch_size, seed=seed,
                      device=args.device, threads=args.threads, progress=args.progress, out=run_dir,
                      resume=os.path.isfile(ckpt))).history
    scores, figures = {}, {}
    for fill in args.fills:
        scores[fill] = None
        for i, (methods, num_test) in enumerate(evaluation_passes(args)):
            tag = "-".join(methods)
            eval_dir = os.path.join(run_dir, f"eval-{fill}-{tag}")
            print(f"== scoring {run}, seed {seed}: {', '.join(methods)}, {fill} fill, "
                  f"{num_test or 'all'} test images", file=sys.stderr)
            if os.path.isdir(eval_dir):
                shutil.rmtree(eval_dir)  # a stale or interrupted report of an earlier checkpoint
            results = run_evaluation(
                [f"{run}={ckpt}"], out=eval_dir, methods=methods, percentages=args.percentages, fill=fill,
                data_dir=args.data_dir, num_test=num_test, seed=args.eval_seed, progress=args.progress,
                orders=orders_of(args, fill, i),
                device=args.device, attribution=AttributionConfig(ig_steps=args.ig_steps))
            part = compact_scores(results)
            check_same_test_set(part, history, num_test, ckpt)
            part["num_test"] = {m: part["num_test"] for m in part["methods"]}
            if scores[fill] is None:
                scores[fill] = part
            else:
                for key in ("methods", "num_test"):
                    scores[fill][key].update(part[key])
                scores[fill].setdefault("localisation", {}).update(part.get("localisation", {}))
            figures.update({Path(f).name: f for f in results["files"]["figures"] if "saliency_" in f})
    path = score_path(args.results, run, seed)
    write_score_file(path, {"run": run, "method": method, "k_rounding": rounding, "seed": seed,
                            "epochs": args.epochs, "settings": settings(args), "history": history,
                            "scores": scores})
    if seed == min(args.seeds):  # one seed's saliency maps per run: PNGs are not small
        for name, src in figures.items():
            shutil.copyfile(src, path.parent / name)


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.results = args.results or os.path.join(args.out, "results")
    keep_freed_memory()
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        if len(set(args.seeds)) != len(args.seeds):
            raise ValueError(f"--seeds: each seed at most once, got {args.seeds}")
        if args.epochs < 1:
            raise ValueError(f"--epochs: expected an integer >= 1, got {args.epochs}")
        for seed in args.seeds:  # every run of a seed before the next seed: a partial result compares all runs
            for run, method, rounding in planned_runs(args):
                if is_done(score_path(args.results, run, seed), args):
                    print(f"== {run}, seed {seed}: done ({score_path(args.results, run, seed)})", file=sys.stderr)
                elif args.compare_only:
                    print(f"== {run}, seed {seed}: not done, left out", file=sys.stderr)
                else:
                    one_run(args, run, method, rounding, seed)
        found = read_score_files(args.results)
        found = {run: {s: rec for s, rec in sorted(found[run].items())
                       if s in args.seeds and matches(rec, args)}
                 for run, _, _ in planned_runs(args) if run in found}
        found = {run: records for run, records in found.items() if records}
        if not found:
            raise ValueError(f"--results: no finished score file in {args.results} for these settings")
        summary = summarise_runs(found)
        files = (write_summary(summary, args.results) + plot_k_trajectories(summary, Path(args.results))
                 + plot_removal_curves_over_seeds(found, Path(args.results)))
    except NonFiniteLoss as e:
        print(f"{parser.prog}: stopped: {e}", file=sys.stderr)
        return 1
    except (ValueError, FileNotFoundError) as e:
        parser.error(str(e))
    print(f"summary: {files[2]}")
    return 0
