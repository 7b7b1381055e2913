"""Train baseline, SGT and SMOOT with one seed, then evaluate them into one report.

  smoot-reproduce --dataset mnist --data-dir "$SMOOT_DATA_DIR" --epochs 1 --subset 12000 \\
      --methods saliency integrated_gradients --num-test 1000 --out runs/reproduce

Each training run goes to <out>/<method>/ (checkpoint.pt, metrics, plots; see smoot-train --help);
a run whose checkpoint exists is resumed up to --epochs (so an interrupted reproduction
continues, and a finished one is only re-evaluated). The evaluation goes to <out>/eval/
(report.md in the paper's table layout, results.json, CSVs, curves and saliency PNGs; see
smoot-evaluate --help).
"""
import argparse
import os
import sys

import torch

from ..data import DATASETS, default_data_dir
from ..evaluation import DEFAULT_PERCENTAGES, IMPUTATIONS, AttributionConfig
from ..evaluation.pipeline import run_evaluation
from ..training.loop import NonFiniteLoss, TrainConfig, keep_freed_memory, train

TRAINING = {"baseline": "baseline", "sgt": "SGT", "smoot": "SMOOT"}  # method -> report name


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    a = p.add_argument
    a("--dataset", choices=DATASETS, default="mnist", help="(default: %(default)s)")
    a("--data-dir", default=default_data_dir(), help="torchvision datasets' folder (default: %(default)s)")
    a("--training", nargs="+", default=list(TRAINING), choices=list(TRAINING),
      help="training methods to compare (default: all three)")
    a("--epochs", type=int, default=1, help="epochs per training run (default: %(default)s; the paper: 100)")
    a("--subset", type=int, help="train on this many training samples (default: all)")
    a("--batch-size", type=int, help="training batch (default: the trainer's, 256 as in the paper)")
    a("--seed", type=int, default=0, help="training and evaluation seed (default: %(default)s)")
    a("--methods", nargs="+", default=["saliency", "integrated_gradients"], help="saliency methods")
    a("--percentages", nargs="+", type=float, default=list(DEFAULT_PERCENTAGES))
    a("--fill", choices=IMPUTATIONS, default="uniform", help="removal fill for the evaluation (default: %(default)s)")
    a("--num-test", type=int, default=1000, help="test images evaluated; 0 = all (default: %(default)s)")
    a("--ig-steps", type=int, default=AttributionConfig.ig_steps)
    a("--device", default="cpu")
    a("--threads", type=int, default=0, help="torch CPU threads, 0 = torch's default")
    a("--no-progress", dest="progress", action="store_false")
    a("--out", default="runs/reproduce", help="(default: %(default)s)")
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    keep_freed_memory()
    if args.threads:
        torch.set_num_threads(args.threads)
    checkpoints = []
    try:
        for method in args.training:
            run_dir = os.path.join(args.out, method)
            ckpt = os.path.join(run_dir, "checkpoint.pt")
            print(f"== training {method} -> {run_dir}", file=sys.stderr)
            train(TrainConfig(dataset=args.dataset, data_dir=args.data_dir, method=method, epochs=args.epochs,
                              subset=args.subset, batch_size=args.batch_size, seed=args.seed,
                              device=args.device, threads=args.threads, progress=args.progress,
                              out=run_dir, resume=os.path.isfile(ckpt)))
            checkpoints.append(f"{TRAINING[method]}={ckpt}")
        print("== evaluating", file=sys.stderr)
        results = run_evaluation(
            checkpoints, out=os.path.join(args.out, "eval"), methods=args.methods, percentages=args.percentages,
            fill=args.fill, data_dir=args.data_dir, num_test=args.num_test or None, seed=args.seed,
            device=args.device, attribution=AttributionConfig(ig_steps=args.ig_steps))
    except NonFiniteLoss as e:
        print(f"{parser.prog}: stopped: {e}", file=sys.stderr)
        return 1
    except (ValueError, FileNotFoundError) as e:
        parser.error(str(e))
    print(f"report: {results['files']['markdown']}")
    return 0

