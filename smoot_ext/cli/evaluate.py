"""Saliency evaluation of trained checkpoints (baseline, SGT, SMOOT) in the paper's layout.

  smoot-evaluate --checkpoints baseline=runs/baseline/checkpoint.pt \\
      sgt=runs/sgt/checkpoint.pt smoot=runs/smoot/checkpoint.pt --data-dir "$SMOOT_DATA_DIR" \\
      --methods saliency integrated_gradients --num-test 1000 --out runs/eval

Writes report.md (one table per saliency method: method, # test, min/median/max k, accuracy,
AUC), results.json, curves.csv, summary.csv, curves_<method>.png and saliency_<method>.png.
AUC units: accuracy-% x fraction removed (trapezoid); 90 = a model at 100% over 0..90% removed.
"""
import argparse
import os
import sys

import torch

from ..evaluation import DEFAULT_PERCENTAGES, FILLS, METHODS, AttributionConfig
from ..evaluation.pipeline import keep_freed_memory, run_evaluation


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoints", nargs="+", required=True, metavar="[NAME=]PATH",
                   help="trained checkpoints; NAME defaults to the run's method")
    p.add_argument("--methods", nargs="+", default=["saliency", "integrated_gradients"],
                   help=f"saliency methods, from: {', '.join(METHODS)} (default: saliency integrated_gradients)")
    p.add_argument("--percentages", nargs="+", type=float, default=list(DEFAULT_PERCENTAGES),
                   help="percent of units removed, increasing, in [0, 100] (default 0 10 ... 90)")
    p.add_argument("--fill", default="uniform", choices=FILLS,
                   help="value of removed units: uniform in the kept units' range, the paper's masking "
                        "(default), or background: black in the data's units")
    p.add_argument("--unit", default="pixel", choices=("pixel", "feature"),
                   help="remove whole pixels (all channels) or single features (default pixel)")
    p.add_argument("--signed", action="store_true", help="rank by the signed attribution instead of |.|")
    p.add_argument("--dataset", default=None, help="test set (default: the checkpoints' dataset)")
    p.add_argument("--data-dir", default=None, help="dataset folder (default: the training run's)")
    p.add_argument("--num-test", type=int, default=1000,
                   help="test images, a seeded random subset; 0 = the whole test set (default 1000)")
    p.add_argument("--batch-size", type=int, default=250, help="images per attribution batch (default 250)")
    p.add_argument("--ig-steps", type=int, default=AttributionConfig.ig_steps,
                   help=f"IntegratedGradients steps (default {AttributionConfig.ig_steps})")
    p.add_argument("--nt-samples", type=int, default=AttributionConfig.nt_samples, help="SmoothGrad samples")
    p.add_argument("--shap-samples", type=int, default=AttributionConfig.shap_samples, help="GradientShap samples")
    p.add_argument("--grid-images", type=int, default=6, help="rows of the saliency-map grid (default 6)")
    p.add_argument("--seed", type=int, default=0, help="test subset, random ranking and fill draws")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--out", default="runs/eval", help="output folder (default runs/eval)")
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    keep_freed_memory()
    for opt in ("ig_steps", "nt_samples", "shap_samples"):
        if getattr(args, opt) < 1:
            parser.error(f"--{opt.replace('_', '-')}: expected >= 1, got {getattr(args, opt)}")
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        results = run_evaluation(
            args.checkpoints, out=args.out, methods=args.methods, percentages=args.percentages,
            fill=args.fill, unit=args.unit, abs=not args.signed, dataset=args.dataset, data_dir=args.data_dir,
            num_test=args.num_test or None, batch_size=args.batch_size, seed=args.seed,
            grid_images=args.grid_images, device=args.device,
            attribution=AttributionConfig(ig_steps=args.ig_steps, nt_samples=args.nt_samples,
                                          shap_samples=args.shap_samples))
    except (ValueError, FileNotFoundError) as e:
        parser.error(str(e))
    t = results["timing"]
    print(f"evaluated {len(results['models'])} model(s) on {results['num_test']} images in "
          f"{t['wall_s']:.1f} s wall, {t['cpu_s']:.1f} s CPU ({t['threads']} threads)")
    print(f"report: {results['files']['markdown']}")
    return 0

