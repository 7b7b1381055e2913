"""Train a model with baseline, SGT or SMOOT saliency-guided training.

  smoot-train                                    # SMOOT, paper CNN, scikit-learn digits
  smoot-train --dataset mnist --data-dir "$SMOOT_DATA_DIR" --method sgt --epochs 10
  torchrun --nproc_per_node 2 python/train.py --dataset mnist --data-dir "$SMOOT_DATA_DIR"

  smoot-train --dataset ts-moving-middle --model transformer --unit feature --epochs 5
  smoot-train --dataset text-rationale --model bilstm      # tokens masked in embedding space

Writes into --out (default runs/<dataset>-<method>, plus -<model> for a model other than the
dataset's default: cnn for images, lstm for time series, bilstm for text):
checkpoint.pt (every epoch, atomically), metrics.jsonl and metrics.csv (per epoch: train loss,
test accuracy, k min/median/max, time), curves.png and k_hist.png. --resume continues a run
from its checkpoint.pt, bit for bit (the options come from the checkpoint, except --epochs,
--device, --num-workers, --threads, --compile and --no-progress; another option given that
differs from the checkpoint's is an error). Ctrl-C or SIGTERM stops the run with its last
checkpoint intact (exit status 1).

Model selection, as the time-series benchmark trains (until converged, the best model kept), but
on held-out training samples instead of its test set:

  smoot-train --dataset ts-middle --val-fraction 0.1 --patience 20 --epochs 300

--val-fraction F holds a seeded, stratified share F of the training set out (per class, the first
round(F * n) of a permutation seeded by --seed; after --subset); every epoch is scored on it
(val_loss, val_acc, best_epoch in the metrics) and the best epoch's weights are the model served
(checkpoint.pt's best_model, what smoot-evaluate loads; its model stays the last epoch's, which
--resume continues). --patience P stops once P epochs in a row brought no better validation
score (--monitor); --epochs is then the cap. selection.json says the best epoch, where the run
stopped and why ("patience" or "epochs"). Without --val-fraction, nothing changes.
"""
import argparse

from ..checks import ROUNDINGS
from ..data import DATASETS
from ..models import MODELS
from ..ops import BACKENDS, FILLS, UNITS
from ..process import process_settings
from ..training.config import OPTIMIZERS, PRECISIONS, TrainConfig
from ..training.guided import K_UPDATES, TRAINING_METHODS
from ..training.loop import TrainingStopped, train
from ..training.selection import MONITORS
from . import given_options, run_command, stop_on_signals


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    d = TrainConfig()
    g = d.guided
    a = p.add_argument
    a("--dataset", choices=DATASETS, default=d.dataset, help="(default: %(default)s)")
    a("--data-dir", default=d.data_dir, help="torchvision datasets' folder (default: %(default)s)")
    a("--download", action="store_true", help="download a torchvision dataset that is missing")
    a("--subset", type=int, help="train on this many training samples (a seeded random choice)")
    a("--test-subset", type=int, help="evaluate on this many test samples")
    a("--model", choices=MODELS, default=d.model,
      help="(default: cnn for images, lstm for time series (ts-*), bilstm for text)")
    a("--pretrained", choices=("auto", "yes", "no"), default=d.pretrained,
      help="DeiT: ImageNet weights if available locally (auto), required (yes) or not (no)")
    a("--method", choices=TRAINING_METHODS, default=g.method, help="(default: %(default)s)")
    a("--epochs", type=int, help="(default: 30 for digits, 20 for synthetic, 100 otherwise, as in the paper)")
    a("--batch-size", type=int, help="(default: 64 for digits and synthetic, 256 otherwise, as in the paper)")
    a("--optimizer", choices=OPTIMIZERS, default=d.optimizer, help="(default: %(default)s)")
    a("--lr", type=float, help="(default: 1 for cnn and resnet, 0.001 for deit_tiny, as in the paper)")
    a("--seed", type=int, default=d.seed, help="(default: %(default)s)")
    a("--device", default=d.device, help="auto, cpu, cuda or cuda:N (default: %(default)s)")
    a("--backend", choices=BACKENDS, default=g.backend, help="masking ops backend (default: %(default)s)")
    a("--lambda", dest="lam", metavar="LAMBDA", type=float, default=g.lam,
      help="weight of the KL term (default: %(default)s)")
    a("--alpha", type=float, help="SMOOT top-1 weight (default: 0.95 MNIST-like, 0.8 CIFAR)")
    a("--mu", type=float, default=g.mu, help="SMOOT k step scale (default: %(default)s)")
    a("--n", type=int, default=g.n, help="SMOOT top-n classes (default: %(default)s)")
    a("--k-init", type=float, default=g.k_init, help="initial k, fraction of units (default: %(default)s)")
    a("--k-min", type=float, default=g.k_min, help="SMOOT lower bound, fraction (default: %(default)s)")
    a("--k-max", type=float, default=g.k_max, help="SMOOT upper bound, fraction (default: %(default)s)")
    a("--k-rounding", choices=ROUNDINGS, default=g.k_rounding,
      help="SMOOT's k step mu*delta rounded down (floor, the paper's formula) or toward zero (trunc) "
           "(default: %(default)s)")
    a("--k-update", choices=K_UPDATES, default=g.k_update,
      help="SMOOT's K in whole units, stepped by the rounded mu*delta (units), or as a real-valued percentage "
           "of the units, stepped by mu*delta percent without rounding, the mask taking the nearest count "
           "(percent) (default: %(default)s)")
    a("--unit", choices=UNITS, default=g.unit,
      help="mask pixels (of a sequence: time steps, tokens) or single features (default: %(default)s)")
    a("--fill", choices=FILLS, default=g.fill, help="masked value (default: %(default)s)")
    a("--signed", dest="abs", action="store_false", help="rank by the signed gradient, not its magnitude")
    a("--shared-forward", action="store_true",
      help="take the saliency from the training forward, saving one forward per step: the same "
           "result for models without dropout or BatchNorm; otherwise the saliency sees train mode "
           "(the paper CNN has dropout)")
    a("--num-workers", type=int, default=d.num_workers, help="DataLoader workers (default: %(default)s)")
    a("--compile", action="store_true", help="torch.compile the model")
    a("--precision", choices=tuple(PRECISIONS), default=d.precision,
      help="the training step in float32 (32), torch.autocast to bfloat16 (bf16: CPU and CUDA) or to "
           "float16 with a GradScaler (fp16: CUDA) (default: %(default)s)")
    a("--threads", type=int, help="torch CPU threads, 0 = torch's default (default: 1 for digits, 0 otherwise)")
    a("--no-progress", dest="progress", action="store_false", help="no tqdm progress bars")
    a("--out", help="output folder (default: runs/<dataset>-<method>[-<model>])")
    a("--resume", action="store_true", help="continue from <out>/checkpoint.pt")
    add_selection_options(p, d)
    return p


def add_selection_options(p: argparse.ArgumentParser, d: TrainConfig) -> None:
    """--val-fraction, --patience, --monitor (smoot-train's and smoot-reproduce's)."""
    a = p.add_argument
    a("--val-fraction", type=float, default=d.val_fraction,
      help="hold this share of the training set out (seeded, stratified) and serve the best epoch on it "
           "(default: none, the last epoch is served)")
    a("--patience", type=int, default=d.patience,
      help="stop after this many epochs in a row without a better validation score; --epochs is the cap "
           "(needs --val-fraction; default: none, train every epoch)")
    a("--monitor", choices=MONITORS, default=d.monitor,
      help="the validation score: accuracy (the benchmark's: a strictly higher accuracy; the patience must "
           "outlast the epochs a model sits at chance) or loss (default: %(default)s)")


def main(argv=None) -> int:
    parser = build_parser()
    return run_command(parser, argv, lambda args: _train(args, given_options(parser, argv)),
                       stops=(TrainingStopped,))


def _train(args: argparse.Namespace, given: set[str]) -> int:
    process_settings(None)  # the threads: the trainer's (TrainConfig.threads: 1 for digits)
    stop_on_signals()
    result = train(TrainConfig.from_options(vars(args)), given=given)
    last, scored, selection = result.history[-1], result.scored, result.selection
    served = "" if not selection else (f" (stopped: {selection['reason']}), the best epoch {scored['epoch']} "
                                       f"served: validation accuracy {100 * scored['val_acc']:.2f}%,")
    print(f"done: {last['epoch']} epochs{served} test accuracy {100 * scored['test_acc']:.2f}%, "
          f"k min/median/max {last['k_min']:.0f}/{last['k_median']:.0f}/{last['k_max']:.0f}")
    return 0
