"""Saliency faithfulness of trained checkpoints (baseline, SGT, SMOOT): MoRF, LeRF, random order.

  smoot-evaluate --checkpoints baseline=runs/baseline/checkpoint.pt \\
      sgt=runs/sgt/checkpoint.pt smoot=runs/smoot/checkpoint.pt --data-dir "$SMOOT_DATA_DIR" \\
      --methods saliency integrated_gradients --num-test 1000 --out runs/eval
  smoot-evaluate --checkpoints smoot=s0.pt,s1.pt,s2.pt sgt=g0.pt,g1.pt,g2.pt --fill road ...

Units are removed most relevant first (MoRF), least relevant first (LeRF) and in a random order
at each level (fraction removed), and replaced by the fill; the curves are the accuracy and the
mean true-class probability. Reported per model and saliency method: AUC(MoRF), AUC(LeRF),
SRG = AUC(LeRF) - AUC(MoRF) and AUC(random), each with a bootstrap interval over the test images,
and the paired interval of every difference between models. Several comma-separated checkpoints
under one name are seeds of one model: its values are their mean, with an interval over seeds.
Also the MoRF drop (comprehensiveness after ERASER: the mean, over the levels that remove
something, of the clean value minus the MoRF curve; higher = better) and the LeRF drop
(sufficiency: the same with LeRF, only the most relevant kept; lower = better). For text,
ERASER's own AOPC (bins of 1-50% of the tokens, deleted or replaced) and rationale agreement
(token F1, IOU F1, AUPRC) beside a random-score row, in eraser.csv and the report. Where the
data knows its truth (synthetic, ts-*, text-rationale, text-majority): precision at the truth's
size and AUROC of the map against it; for series also the time-series benchmark's AUP and AUR
(Ismail et al. 2020, its published formulae) and their time and feature variants, per element
(per step too, marked, where the truth covers at most half of the steps); every such table ends
with a chance row, a seeded random map.

Sequences (ts-*, text-rationale): --unit pixel removes whole time steps or tokens ("step"),
--unit feature single values of a series ("element"); levels are fractions of each sample's own
length and padding is never removed, never counted, never in a fill's range; token ids are
scored and removed in each model's embedding space.

Writes into --out (replaced only when the whole report is ready): report.md, results.json,
summary.csv, differences.csv, curves.csv, per_image.npz and per_image.csv (every per-image
curve and AUC), curves_<method>.png (bands: bootstrap intervals), saliency_<method>.png, and
timing.json (the seconds of each phase; also printed). Units of equal saliency are removed lower
index first, on every backend (Quantus ranks ties with an unstable sort: on maps with ties its
curves can differ from these; without ties they are bit-identical).
AUC: trapezoid over the fraction removed, y in %, e.g. x from 0 to 0.9: at most 90.
"""
import argparse

from ..evaluation import (
    ATTRIBUTION_METHODS,
    DEFAULT_LEVELS,
    IMPUTATIONS,
    ORDERS,
    REMOVAL_UNITS,
    AttributionConfig,
    EvalConfig,
    levels_from_percentages,
)
from ..evaluation.imputation import ROAD_NOISE
from ..evaluation.perturbation import FORWARD_BYTES, MAX_FORWARD_BATCH
from ..evaluation.pipeline import phases, run_evaluation
from ..evaluation.statistics import DEFAULT_CONFIDENCE, DEFAULT_RESAMPLES
from ..process import process_settings
from . import run_command


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    a = p.add_argument
    a("--checkpoints", nargs="+", required=True, metavar="[NAME=]PATH[,PATH...]",
      help="trained checkpoints; NAME defaults to the run's method; several comma-separated paths are "
           "checkpoints (seeds) of one model")
    a("--methods", nargs="+", default=["saliency", "integrated_gradients"],
      help=f"saliency methods, from: {', '.join(ATTRIBUTION_METHODS)} (default: saliency integrated_gradients)")
    a("--orders", nargs="+", default=list(ORDERS), help=f"removal orders, from: {', '.join(ORDERS)} (default: all)")
    a("--levels", nargs="+", type=float, default=None,
      help="fractions of units removed, increasing, in [0, 1) (default 0 0.1 ... 0.9)")
    a("--percentages", nargs="+", type=float, default=None, help="the levels in percent, in [0, 100) (older option)")
    a("--fill", default="uniform",
      help=f"value of removed units, one of: {', '.join(IMPUTATIONS)} (default uniform: the training fill; "
           "constant: --fill-value, default black; mean: the image's kept mean per channel; road: ROAD's "
           "noisy linear imputation)")
    a("--fill-value", nargs="+", type=float, default=None,
      help="the constant fill: one value or one per channel, in the data's units (default: black)")
    a("--road-noise", type=float, default=ROAD_NOISE, help=f"std of the road fill's noise (default {ROAD_NOISE})")
    a("--unit", default="pixel", choices=tuple(REMOVAL_UNITS),
      help="remove whole pixels (all channels) or single features; for sequences pixel means a time step or "
           "token (step) and feature one value (element) (default pixel)")
    a("--signed", action="store_true", help="rank by the signed attribution instead of |.|")
    a("--dataset", default=None, help="test set (default: the checkpoints' dataset; another one is an error)")
    a("--data-dir", default=None, help="dataset folder (default: the training run's)")
    a("--num-test", type=int, default=1000,
      help="test images, a seeded random subset; 0 = the whole test set (default 1000)")
    a("--batch-size", type=int, default=250, help="images per attribution batch (default 250)")
    a("--forward-batch", type=int, default=None,
      help="perturbed inputs per forward pass of the removal curves (default: as many as fill "
           f"{FORWARD_BYTES[True] / 2**20:g} MiB, at most {MAX_FORWARD_BATCH}, as this command keeps freed memory; "
           f"{FORWARD_BYTES[False] // 1024} KiB where your MALLOC_* or GLIBC_TUNABLES settings stop it; "
           "another batch can move the scores in their last bits: CPU kernels round differently at other "
           "batch sizes)")
    a("--ig-steps", type=int, default=AttributionConfig.ig_steps,
      help=f"IntegratedGradients steps (default {AttributionConfig.ig_steps})")
    a("--nt-samples", type=int, default=AttributionConfig.nt_samples, help="SmoothGrad samples")
    a("--shap-samples", type=int, default=AttributionConfig.shap_samples, help="GradientShap samples")
    a("--bootstrap", type=int, default=DEFAULT_RESAMPLES,
      help=f"bootstrap resamples of the test images (default {DEFAULT_RESAMPLES})")
    a("--confidence", type=float, default=DEFAULT_CONFIDENCE, help="interval level (default 0.95)")
    a("--grid-images", type=int, default=6, help="rows of the saliency-map grid (default 6)")
    a("--seed", type=int, default=0, help="test subset, random order, fill draws and bootstrap")
    a("--device", default="cpu")
    a("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    a("--no-progress", dest="progress", action="store_false", help="no progress bar")
    a("--out", default="runs/eval", help="output folder (default runs/eval)")
    return p


def config_from(args) -> EvalConfig:
    """The evaluation's options as one checked config (raises ValueError naming the option)."""
    if args.levels is not None and args.percentages is not None:
        raise ValueError("--levels and --percentages: give one of them")
    levels = levels_from_percentages(args.percentages) if args.percentages is not None else \
        (DEFAULT_LEVELS if args.levels is None else args.levels)
    return EvalConfig(
        methods=args.methods, levels=levels, orders=args.orders, fill=args.fill, fill_value=args.fill_value,
        road_noise=args.road_noise, unit=args.unit, abs=not args.signed, seed=args.seed,
        num_test=args.num_test or None, batch_size=args.batch_size, forward_batch=args.forward_batch,
        grid_images=args.grid_images,
        bootstrap=args.bootstrap, confidence=args.confidence, progress=args.progress,
        attribution=AttributionConfig(ig_steps=args.ig_steps, nt_samples=args.nt_samples,
                                      shap_samples=args.shap_samples))


def main(argv=None) -> int:
    return run_command(build_parser(), argv, _evaluate)


def _evaluate(args: argparse.Namespace) -> int:
    process_settings(args.threads)
    results = run_evaluation(args.checkpoints, config_from(args), out=args.out, dataset=args.dataset,
                             data_dir=args.data_dir, device=args.device)
    t = results["timing"]
    print(f"evaluated {sum(e['checkpoints'] for e in results['models'].values())} checkpoint(s) on "
          f"{results['num_test']} images in {t['wall_s']:.1f} s wall, {t['cpu_s']:.1f} s CPU ({t['threads']} threads)")
    print("time by phase: " + ", ".join(f"{name} {s:.2f} s" for name, s in phases(t).items()))
    print(f"report: {results['files']['markdown']}")
    return 0
