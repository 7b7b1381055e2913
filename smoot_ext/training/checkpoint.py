"""Checkpoints: atomic save, load, and rebuilding a trained model for evaluation; the run's
metrics files (``write_history``).

Public API (stable):

    save_checkpoint(path, state)            atomic: written to a temporary file, fsynced, renamed
    load_checkpoint(path, map_location="cpu") -> dict
    load_model(path, map_location="cpu") -> (model, meta)

A checkpoint written by the trainer (``smoot_ext.training.loop``) is a dict with
``format`` (``FORMAT``), ``meta``, ``model`` (state_dict of the model itself, not of its DDP
or torch.compile wrapper: no ``module.`` or ``_orig_mod.`` prefixes), ``optimizer``, ``trainer``
(one ``SaliencyGuidedTraining.state_dict()`` per rank: the k vector and that rank's mask
generator), ``scaler`` (the fp16 GradScaler's state; empty for other precisions), ``rng`` (one
entry per rank: torch, CUDA, numpy and python RNG states), ``epoch`` (epochs completed) and
``history`` (one metrics dict per epoch); with a validation split, ``best_model`` (the best
epoch's weights; ``model`` is the last epoch's, what a resume continues). Checkpoints written
before ``trainer`` was per rank (rank 0's object, with each rank's mask generator under ``rng``)
are read in this layout.

``meta`` is a plain dict: ``dataset``, ``model``, ``method`` ("baseline" | "sgt" | "smoot"),
``in_channels``, ``num_classes``, ``image_size``, ``kind`` and ``vocab_size`` (smoot_ext.data's
DataBundle), ``num_units`` (M, maskable units per image),
``epoch``, ``k_stats`` ({"min", "median", "max", "mean"} of the k vector after the last epoch;
zeros for the baseline), ``k`` (the k vector, int64 CPU tensor, or None for the baseline),
``metrics`` (the metrics of the epoch ``load_model`` serves: the last, or with a validation
split the best), ``config`` (every option of the run, as a dict) and, with a validation split,
``selection`` (``val_fraction``, ``val_size``, ``monitor``, ``patience``, ``best_epoch``,
``stopped_at`` and ``reason``: "patience", "epochs" (the cap), or None while it goes on).

``load_model`` rebuilds the model with ``smoot_ext.models.build_model`` from ``meta`` (never
downloading weights: the trained ones are loaded over it), loads the weights (``best_model``
where there is one) and returns it in eval mode.
"""
from __future__ import annotations

import csv
import json
import os
import pickle
import tempfile
import zipfile

import torch

FORMAT = "smoot_ext.checkpoint/1"


def save_checkpoint(path: str, state: dict) -> None:
    """Writes ``state`` to ``path`` so that ``path`` is always either the old or the new file."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".pt", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_checkpoint(path: str, map_location="cpu") -> dict:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint {path!r} does not exist")
    # Not weights_only: RNG states and the run config are plain Python objects we wrote ourselves.
    try:
        state = torch.load(path, map_location=map_location, weights_only=False)
    except (pickle.UnpicklingError, EOFError, zipfile.BadZipFile, RuntimeError, OSError) as e:
        raise ValueError(f"cannot read checkpoint {path!r} (corrupt, truncated or not a smoot_ext "
                         f"checkpoint): {type(e).__name__}: {e}") from e
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        found = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise ValueError(f"{path!r} is not a smoot_ext checkpoint (format {FORMAT!r}, found {found!r})")
    return _per_rank_trainer(state)


def _per_rank_trainer(state: dict) -> dict:
    """An older checkpoint's one ``trainer`` (rank 0's) as one per rank, with each rank's mask
    generator, which the older layout kept among the rank's RNG states."""
    if isinstance(state.get("trainer"), dict):
        rngs = [dict(r) for r in state["rng"]]
        state["trainer"] = [{**state["trainer"], "generator": r.pop("mask_generator")} for r in rngs]
        state["rng"] = rngs
    return state


def write_history(out: str, history: list[dict], columns, selection: dict | None = None) -> None:
    """metrics.jsonl and metrics.csv, each replaced atomically and rewritten whole from the
    checkpointed history, so a resumed run never duplicates rows; with a validation split, its
    ``selection`` (best epoch, where and why the run stopped) as selection.json."""
    files = [("metrics.jsonl", lambda f: f.writelines(json.dumps(r) + "\n" for r in history)),
             ("metrics.csv", lambda f: _csv(f, history, columns))]
    if selection is not None:
        files.append(("selection.json", lambda f: f.write(json.dumps(selection, indent=1) + "\n")))
    for name, write in files:
        tmp = os.path.join(out, f".{name}.tmp")
        with open(tmp, "w", newline="") as f:
            write(f)
        os.replace(tmp, os.path.join(out, name))


def _csv(f, history: list[dict], columns) -> None:
    w = csv.DictWriter(f, fieldnames=columns)
    w.writeheader()
    w.writerows(history)


def load_model(path: str, map_location="cpu"):
    """Returns ``(model, meta)``: the trained model (eval mode) and the run's meta dict."""
    from ..models import build_model

    state = load_checkpoint(path, map_location)
    meta = state["meta"]
    model = build_model(meta["model"], meta["in_channels"], meta["num_classes"], meta["image_size"],
                        pretrained=False, vocab_size=meta.get("vocab_size"))
    model.load_state_dict(state.get("best_model") or state["model"])  # the best epoch's, where validated
    model.to(map_location if isinstance(map_location, (str, torch.device)) else "cpu")
    return model.eval(), meta
