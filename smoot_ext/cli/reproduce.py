"""Train baseline, SGT and SMOOT over several seeds, score every final checkpoint, and compare.

  smoot-reproduce --dataset mnist --data-dir "$SMOOT_DATA_DIR" --epochs 3 --seeds 0 1 2 \\
      --k-rounding floor trunc --fills uniform road --num-test 0 --ig-num-test 1000 \\
      --out runs/mnist-compare --results docs/results/mnist
  smoot-reproduce --dataset ts-middle --model lstm --methods saliency --seeds 0 1 2 3 4 \\
      --k-rounding floor trunc --out runs/ts-middle --results docs/results/ts-middle-lstm

Sequences (ts-*, text-rationale) are masked and scored per time step or token (--unit feature:
per element of a series, in training and scoring alike): the levels are
fractions of each sample's own length, padding never removed; the localisation against the
known box or rationale and, for text, ERASER's comprehensiveness and sufficiency are in the
scores (smoot-evaluate --help). The road fill needs images.

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
plots compare the runs over seeds (smoot_ext.study).

Trained as the time-series benchmark trains, until converged and scored only where the model
learned the task:

  smoot-reproduce --dataset ts-rare-time --model lstm --epochs 300 --val-fraction 0.1 --patience 30 \\
      --optimizer adam --lr 0.001 --min-accuracy 90 --out runs/ts-rare-time --results docs/results/ts-rare-time-lstm

--val-fraction, --patience and --monitor are smoot-train's (the best epoch on a held-out share of
the training set is the model scored; --epochs is the cap); --min-accuracy P leaves every run
whose scored model has a test accuracy below P% unscored: its score file says not_scored with the
accuracy, and the summary lists it under "Not scored". Without these options, nothing changes.
"""
import argparse

from ..checks import ROUNDINGS
from ..data import DATASETS, default_data_dir
from ..evaluation import DEFAULT_PERCENTAGES, IMPUTATIONS, AttributionConfig
from ..models import MODELS
from ..ops import UNITS
from ..process import process_settings
from ..study.experiment import IG, ReproduceConfig, reproduce
from ..training.config import OPTIMIZERS, TrainConfig
from ..training.guided import K_UPDATES, TRAINING_METHODS
from ..training.loop import TrainingStopped
from . import run_command, stop_on_signals
from .train import add_selection_options


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    a = p.add_argument
    a("--dataset", choices=DATASETS, default="mnist", help="(default: %(default)s)")
    a("--data-dir", default=default_data_dir(), help="torchvision datasets' folder (default: %(default)s)")
    a("--model", choices=MODELS, help="the trained model (default: the trainer's for the dataset's kind)")
    a("--unit", choices=UNITS, help="masked in training and removed in scoring: whole pixels (of a sequence: "
                                    "time steps, tokens) or single features, elements of a series (default: pixel)")
    a("--training", nargs="+", default=list(TRAINING_METHODS), choices=TRAINING_METHODS,
      help="training methods to compare (default: all three)")
    a("--k-rounding", nargs="+", default=["floor"], choices=ROUNDINGS,
      help="SMOOT's k step rounding, one SMOOT run per value (default: floor, the paper's formula)")
    a("--k-update", nargs="+", default=["units"], choices=K_UPDATES,
      help="SMOOT's K: units (one run per --k-rounding) and/or percent (one run, smoot-percent: a real-valued "
           "percentage, smoot-train --help) (default: units)")
    a("--sgt-k", nargs="+", type=float, default=[],
      help="more SGT runs, each at this fixed k, a fraction of the units (run sgt-k<F>; k = floor(F * M), e.g. "
           "0.2985 and 0.6939 for MNIST's 234 and 544 of 784)")
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
    a("--optimizer", choices=OPTIMIZERS, help="the trainer's optimizer (default: smoot-train's, adadelta)")
    a("--lr", type=float, help="the trainer's learning rate (default: smoot-train's for the model)")
    add_selection_options(p, TrainConfig())
    a("--min-accuracy", type=float,
      help="score only runs whose served model reaches this test accuracy, in percent (the time-series "
           "benchmark: 90); the others are recorded and listed as not scored, with their accuracy "
           "(default: score every run)")
    return p


def main(argv=None) -> int:
    return run_command(build_parser(), argv, _reproduce, stops=(TrainingStopped,))


def _reproduce(args: argparse.Namespace) -> int:
    process_settings(args.threads)
    stop_on_signals()
    files = reproduce(ReproduceConfig(**vars(args)))
    print(f"summary: {next(f for f in files if f.name == 'summary.md')}")
    return 0
