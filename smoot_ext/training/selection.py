"""Model selection on a validation split: the split carved from the training set, and the
choice of the best epoch and of when to stop, both functions of the run's history alone.

The benchmark of Ismail et al. 2020 (TS-Interpretability-Benchmark, ``Scripts/train_models.py``)
trains up to 500 epochs, keeps the weights of the best test accuracy so far (``_BEST.pkl``,
a strictly higher accuracy) and stops once 200 epochs in a row brought none. Here the held-out
part of the training set takes the test set's place, so the test accuracy stays unbiased.

``split_validation`` is the seeded, stratified rule: per class (in label order), a permutation of
that class's samples from ``torch.Generator().manual_seed(seed)`` (one generator, drawn class
after class); the first ``round(fraction * n_class)`` go to validation. Both parts keep the
training set's order; the training part is re-indexed 0..n-1 (SMOOT keeps one k per sample).

``best_epoch`` and ``stop_reason`` read the history rows' ``val_loss``/``val_acc``: nothing else
is needed to continue a run bit for bit, but the best epoch's weights (the checkpoint keeps them).
"""
from __future__ import annotations

import torch

# What "better" means: "accuracy" is the benchmark's criterion, a strictly higher validation
# accuracy (the earliest epoch at the best is kept; once the model is perfect on the split the
# patience runs out, where the loss would still creep down to the cap). Its caveat: an LSTM sits
# at chance for its first epochs (ts-middle: about 20), which the patience must outlast (the
# benchmark's is 200). "loss" is a lower validation loss.
MONITORS = ("accuracy", "loss")
# The history columns of a run with a validation split (after the test columns).
VALIDATION_COLUMNS = ("val_loss", "val_acc", "best_epoch")


def split_validation(train, fraction: float, seed: int):
    """(training part, validation part) of ``train`` (an IndexedSamples); see the module docstring."""
    g = torch.Generator().manual_seed(seed)
    held = []
    for c in torch.unique(train.labels).tolist():
        where = (train.labels == c).nonzero().flatten()
        held.append(where[torch.randperm(len(where), generator=g)[:round(fraction * len(where))]])
    is_val = torch.zeros(len(train), dtype=torch.bool)
    is_val[torch.cat(held)] = True
    if is_val.all() or not is_val.any():
        raise ValueError(f"val_fraction: expected a share of the {len(train)} training samples that leaves "
                         f"both parts at least one sample, got {fraction} ({int(is_val.sum())} for validation)")
    return _take(train, ~is_val), _take(train, is_val)


def _take(samples, keep: torch.Tensor):
    return type(samples)(samples.inputs[keep], samples.labels[keep],
                         *(None if t is None else t[keep] for t in (samples.masks, samples.lengths)))


def _score(row: dict, monitor: str) -> float:
    """Greater is better."""
    return row["val_acc"] if monitor == "accuracy" else -row["val_loss"]


def best_epoch(history: list[dict], monitor: str) -> int:
    """The epoch (1-based) with the best validation score; the earliest among equals."""
    best = max(history, key=lambda r: (_score(r, monitor), -r["epoch"]))
    return best["epoch"]


def stop_reason(history: list[dict], monitor: str, patience: int | None, epochs: int) -> str | None:
    """Why the run ends after its last epoch: "patience" (``patience`` epochs in a row without a
    better validation score), "epochs" (the cap), or None (it goes on)."""
    if patience is not None and history and len(history) - best_epoch(history, monitor) >= patience:
        return "patience"
    return "epochs" if len(history) >= epochs else None


def scored_row(history: list[dict], selection: dict | None) -> dict:
    """The history row of the model a run serves (``load_model``): the best epoch's with a
    validation split (``selection``, a run's ``meta["selection"]``), else the last."""
    return history[selection["best_epoch"] - 1] if selection else history[-1]
