"""The training loop behind ``smoot-train``: epochs, metrics, checkpoints, resume, DDP.

    from smoot_ext import GuidedConfig
    from smoot_ext.training.loop import TrainConfig, train
    result = train(TrainConfig(guided=GuidedConfig(method="smoot"), dataset="digits", out="runs/digits"))
    result.history, result.model, result.guided   # per-epoch metrics, the bare model, the k state

``train`` writes into ``config.out``:

- ``checkpoint.pt`` after every epoch, atomically (see :mod:`.checkpoint`): model, optimizer,
  each rank's ``SaliencyGuidedTraining`` state (the SMOOT k vector and the mask generator) and
  RNG states (torch CPU and CUDA, numpy, python), and the epoch; the batch order is a function
  of (seed, epoch), so ``resume=True`` continues bit for bit where the run stopped;
- ``metrics.jsonl`` and ``metrics.csv``: one row per epoch (``HISTORY_COLUMNS``);
- ``curves.png`` (train loss, test accuracy, k min/median/max per epoch) and ``k_hist.png``
  (the final k vector) at the end.

With ``val_fraction`` (:mod:`.selection`), that share of the training set is held out; each epoch
adds ``val_loss``, ``val_acc`` and ``best_epoch`` (the best so far, by ``monitor``) to its row;
the checkpoint also keeps the best epoch's weights (``best_model``), which ``load_model`` and
the returned model are, while ``model`` stays the last epoch's, the state a resume (or a raised
``epochs`` cap) continues from; ``selection.json`` and the checkpoint's ``meta["selection"]``
say the best epoch, where the run stopped and why. With ``patience`` too, the run stops once
that many epochs in a row brought no better validation score; ``epochs`` is then the cap.

``precision`` "bf16" runs each training step under ``torch.autocast`` to bfloat16 (CPU and
CUDA), "fp16" under autocast to float16 with a ``GradScaler`` (CUDA); the test pass stays float32.

A run that cannot go on raises a :class:`TrainingStopped` naming its last intact checkpoint (the
last finished epoch), which ``resume=True`` continues: :class:`NonFiniteLoss` (a NaN or infinite
loss, before the step is applied), :class:`CheckpointNotWritten` (a full or read-only disk) and
:class:`Interrupted` (Ctrl-C; ``smoot-train`` turns SIGTERM into the same). A signal handler
also calls :func:`request_stop`: Python drops an exception raised inside a finalizer, so a
KeyboardInterrupt alone can be lost; the request stops the run at its next step.

On a resume, the options come from the checkpoint; an option the caller chose (``given``) that
differs from the checkpoint's is an error naming both values, but for ``RESUME_OVERRIDES``.

On a CPU, call :func:`smoot_ext.allocator.keep_freed_memory` once per process first (the
command-line front ends do): it is a process-wide setting, so ``train`` leaves it to its caller.

Under torchrun (``WORLD_SIZE`` > 1) it joins the process group (gloo on CPU, NCCL on CUDA),
wraps the model in DDP, gives each rank a disjoint share of every epoch's samples and makes the
k vector consistent after each epoch (:meth:`SaliencyGuidedTraining.sync_k`); rank 0 writes.

The steps: :func:`train` (resume's options, the process group) -> ``_set_up`` (data, model,
optimizer, trainer object) -> ``_restore`` (a checkpoint's state) -> per epoch ``_train_epoch``
and ``_test_epoch`` -> ``_save`` (checkpoint and metrics) -> ``_plot``.
"""
from __future__ import annotations

import os
import random
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import NamedTuple

from .._extras import require

require("train", "tqdm")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from tqdm import tqdm  # noqa: E402

from ..data import load_dataset, make_loader  # noqa: E402
from ..models import build_model  # noqa: E402
from ..process import set_threads  # noqa: E402
from .checkpoint import FORMAT, load_checkpoint, save_checkpoint, write_history  # noqa: E402
from .config import PRECISIONS, RESUME_OVERRIDES, TrainConfig, check_resume_options  # noqa: E402
from .guided import SaliencyGuidedTraining  # noqa: E402
from .saliency import eval_mode  # noqa: E402
from .selection import VALIDATION_COLUMNS, best_epoch, scored_row, split_validation, stop_reason  # noqa: E402

# One row of metrics.csv / metrics.jsonl per epoch.
HISTORY_COLUMNS = ("epoch", "train_loss", "train_ce", "train_kl", "train_acc", "test_loss", "test_acc",
                   "k_min", "k_median", "k_max", "k_mean", "time_s", "cpu_s")
# The columns that measure the machine, not the run: wall seconds and this process's CPU seconds
# (all its threads) per epoch; the rest repeat bit for bit on a resume or another rank.
TIMINGS = ("time_s", "cpu_s")


class TrainResult(NamedTuple):
    history: list[dict]                 # one HISTORY_COLUMNS row per epoch
    model: torch.nn.Module              # the trained model (the best epoch's, with a validation split),
                                        # without DDP/compile wrappers
    guided: SaliencyGuidedTraining      # its k vector (SMOOT) and mask generator
    selection: dict | None = None       # with a validation split: the best epoch, where and why it stopped

    @property
    def scored(self) -> dict:
        """The history row of the model returned: the best epoch's, or the last."""
        return scored_row(self.history, self.selection)


class TrainingStopped(RuntimeError):
    """The run stopped before its last epoch; its last checkpoint is intact and resumable."""


class NonFiniteLoss(TrainingStopped):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


class CheckpointNotWritten(TrainingStopped):
    """The checkpoint could not be written (a full or read-only disk); the previous one is kept."""


class Interrupted(TrainingStopped):
    """Interrupted (KeyboardInterrupt) during an epoch; the last checkpoint is kept."""


_stop_requested = threading.Event()


def request_stop() -> None:
    """Stops the running ``train`` as a KeyboardInterrupt does, at its next step or epoch. For a
    signal handler, beside raising KeyboardInterrupt: the raise is lost when the signal lands in a
    finalizer (``__del__``, a weakref callback), which Python runs with exceptions ignored."""
    _stop_requested.set()


def _raise_if_stop_requested() -> None:
    if _stop_requested.is_set():
        raise KeyboardInterrupt


class Ranks(NamedTuple):
    rank: int
    world: int
    local: int

    @classmethod
    def from_environment(cls) -> Ranks:
        env = os.environ.get
        return cls(int(env("RANK", "0")), int(env("WORLD_SIZE", "1")), int(env("LOCAL_RANK", "0")))


@dataclass
class _Run:
    """What the epochs of one run share."""
    cfg: TrainConfig
    ranks: Ranks
    device: torch.device
    bundle: object                      # smoot_ext.data's DataBundle
    model: torch.nn.Module              # the bare model (what the checkpoint holds)
    run_model: torch.nn.Module          # the model as trained: compiled and/or DDP-wrapped
    opt: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    sgt: SaliencyGuidedTraining
    history: list
    val: object = None                  # the held-out IndexedSamples, with val_fraction
    best_model: dict | None = None      # the best epoch's weights so far, with val_fraction

    @property
    def checkpoint_path(self) -> str:
        return os.path.join(self.cfg.out, "checkpoint.pt")

    @property
    def test_model(self) -> torch.nn.Module:
        """The model the test pass runs: as trained (compiled), but outside DDP (no gradient sync)."""
        ddp = isinstance(self.run_model, torch.nn.parallel.DistributedDataParallel)
        return self.run_model.module if ddp else self.run_model


def train(config: TrainConfig, given: Iterable[str] | None = None) -> TrainResult:
    """Trains as ``config`` says (see the module docstring). ``given``: the options the caller
    chose, checked against the checkpoint's on a resume; None: those that differ from
    TrainConfig's defaults."""
    _stop_requested.clear()  # a request is for the run it interrupted
    cfg, state = _resume_options(config, given)
    ranks = Ranks.from_environment()
    device = _device(cfg.device, ranks.local)
    if cfg.precision == "fp16" and device.type != "cuda":  # on a resume, the checkpoint's precision
        raise ValueError(f"precision: fp16 (with a GradScaler) needs a CUDA device, got {device}; "
                         f"on the CPU use bf16")
    set_threads(cfg.threads)
    own_group = ranks.world > 1 and not dist.is_initialized()
    if own_group:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    try:
        run = _set_up(cfg, device, ranks)
        if state is not None:
            _restore(run, state)
        _epochs(run)
        if ranks.rank == 0 and run.history:
            _plot(run)
        if own_group:
            dist.barrier()  # no rank tears the group down while another still works in it
        selection = _selection(run, run.history)
        if selection:  # after the last checkpoint: it keeps the last weights, to continue from
            run.model.load_state_dict(run.best_model)
        return TrainResult(run.history, run.model, run.sgt, selection)
    finally:
        if own_group:
            dist.destroy_process_group()


def _resume_options(config: TrainConfig, given: Iterable[str] | None) -> tuple[TrainConfig, dict | None]:
    """The run's options, resolved; with ``resume``, the checkpoint's state and its options, but
    for RESUME_OVERRIDES."""
    cfg = config.resolved()
    if not cfg.resume:
        return cfg, None
    path = os.path.join(cfg.out, "checkpoint.pt")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"resume: no checkpoint at {path} (is out the run's folder?)")
    try:
        state = load_checkpoint(path)
    except ValueError as e:
        raise ValueError(f"resume: {e}; move it away to train from the start") from e
    saved = state["meta"]["config"]
    check_resume_options(config, saved, given)
    options = {**saved, **{name: getattr(cfg, name) for name in RESUME_OVERRIDES}}
    return TrainConfig.from_options(options).resolved(), state


def _device(name: str, local_rank: int) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(name)
    except RuntimeError:
        dev = None
    if dev is None or dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device: expected auto, cpu, cuda or cuda:N, got {name!r}")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device: {name!r} requested but CUDA is not available (use cpu)")
        if dev.index is None:
            dev = torch.device("cuda", local_rank)
    return dev


def _optimizer(name: str, params, lr: float) -> torch.optim.Optimizer:
    if name == "adadelta":
        return torch.optim.Adadelta(params, lr=lr)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr)
    return torch.optim.AdamW(params, lr=lr)


def _load_data(cfg: TrainConfig, ranks: Ranks):
    if ranks.world > 1 and ranks.rank != 0:
        dist.barrier()  # rank 0 downloads (if asked) before the others read
    bundle = load_dataset(cfg.dataset, cfg.data_dir, download=cfg.download and ranks.rank == 0,
                          subset=cfg.subset, test_subset=cfg.test_subset, seed=cfg.seed)
    if ranks.world > 1 and ranks.rank == 0:
        dist.barrier()
    if len(bundle.train) < ranks.world:
        raise ValueError(f"subset: {len(bundle.train)} training samples cannot be shared "
                         f"out over {ranks.world} processes")
    if cfg.val_fraction is None:
        return bundle, None
    train, val = split_validation(bundle.train, cfg.val_fraction, cfg.seed)
    return replace(bundle, train=train), val


def _set_up(cfg: TrainConfig, device: torch.device, ranks: Ranks) -> _Run:
    """The data, the model (the same initial weights on every rank), its optimizer, the trainer object."""
    if device.type == "cuda":
        torch.cuda.set_device(device)
    bundle, val = _load_data(cfg, ranks)
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    pretrained = {"auto": "auto", "yes": True, "no": False}[cfg.pretrained]
    model = build_model(cfg.model, bundle.in_channels, bundle.num_classes, bundle.image_size,
                        pretrained=pretrained if not cfg.resume else False,
                        vocab_size=bundle.vocab_size).to(device)
    opt = _optimizer(cfg.optimizer, model.parameters(), cfg.lr)
    # Disabled (a pass-through) but for fp16; the checkpoint keeps its scale for a resume.
    scaler = torch.amp.GradScaler(device.type, enabled=cfg.precision == "fp16")
    torch.manual_seed(cfg.seed + 7919 * ranks.rank)  # dropout draws differ across ranks
    run_model = torch.compile(model) if cfg.compile else model
    if ranks.world > 1:
        run_model = torch.nn.parallel.DistributedDataParallel(
            run_model, device_ids=[device.index] if device.type == "cuda" else None)
    sgt = SaliencyGuidedTraining(run_model, cfg.guided_for(bundle), num_samples=len(bundle.train),
                                 input_shape=tuple(bundle.train.inputs.shape[1:]), device=device,
                                 seed=cfg.seed * 1_000_003 + ranks.rank, lengths=bundle.train.lengths)
    if ranks.rank == 0:
        os.makedirs(cfg.out, exist_ok=True)
    return _Run(cfg, ranks, device, bundle, model, run_model, opt, scaler, sgt, history=[], val=val)


def _restore(run: _Run, state: dict) -> None:
    """A checkpoint's weights, optimizer, this rank's trainer object and RNG states, and history."""
    world, rank = run.ranks.world, run.ranks.rank
    if len(state["rng"]) != world:
        raise ValueError(f"resume: the checkpoint was written by {len(state['rng'])} "
                         f"process(es), this run has {world}: bit-for-bit resume needs the same")
    run.model.load_state_dict(state["model"])
    run.opt.load_state_dict(state["optimizer"])
    run.scaler.load_state_dict(state.get("scaler") or {})
    run.sgt.load_state_dict(state["trainer"][rank])
    _set_rng_state(state["rng"][rank])
    run.history = state["history"]
    run.best_model = state.get("best_model")
    if rank == 0:
        print(f"resuming {run.checkpoint_path} after epoch {state['epoch']} (options from the checkpoint; "
              f"taken from the command line: {', '.join(RESUME_OVERRIDES)})", file=sys.stderr)


def _rng_state() -> dict:
    return {"torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
            "numpy": np.random.get_state(), "python": random.getstate()}


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])


def _all_sum(values: list[float], device, world: int) -> list[float]:
    if world == 1:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def _all_gather(obj, world: int) -> list:
    """Every rank's ``obj``, in rank order."""
    if world == 1:
        return [obj]
    out = [None] * world
    dist.all_gather_object(out, obj)
    return out


@torch.no_grad()
def test_loss_and_accuracy(model, dataset, device, batch_size: int, rank: int = 0, world: int = 1):
    """(mean cross-entropy, accuracy) of ``model`` on ``dataset``, shared out over the ranks."""
    loss = correct = 0.0
    idx = torch.arange(rank, len(dataset), world)
    with eval_mode(model):
        for part in idx.split(batch_size):
            x, y, _ = dataset.__getitems__(part)
            x, y = x.to(device), y.to(device)
            kw = {} if dataset.lengths is None else {"lengths": dataset.lengths[part].to(device)}
            logits = model(x, **kw)
            loss += F.cross_entropy(logits, y, reduction="sum").item()
            correct += (logits.argmax(1) == y).sum().item()
    loss, correct = _all_sum([loss, correct], device, world)
    return loss / len(dataset), correct / len(dataset)


def _check_finite(loss_sum: torch.Tensor, world: int) -> bool:
    bad = (~torch.isfinite(loss_sum)).to(torch.int32)
    if world > 1:  # every rank must stop together, or the others hang in the next all_reduce
        dist.all_reduce(bad, op=dist.ReduceOp.MAX)
    return bool(bad.item())


def _epochs(run: _Run) -> None:
    """The remaining epochs, each followed by its checkpoint."""
    try:
        for epoch in range(len(run.history), run.cfg.epochs):
            if _stop(run, run.history) == "patience":  # also a resumed run that had stopped
                break
            _raise_if_stop_requested()
            _save(run, _epoch(run, epoch))
    except KeyboardInterrupt as e:
        raise Interrupted(f"interrupted during epoch {len(run.history) + 1}: {_kept(run)}") from e


def _kept(run: _Run) -> str:
    """Where the run can continue from."""
    if not run.history:
        return "no checkpoint was written yet"
    return (f"the checkpoint after epoch {run.history[-1]['epoch']} is intact at {run.checkpoint_path} "
            "(continue with resume)")


def _epoch(run: _Run, epoch: int) -> dict:
    """One epoch: train, make k consistent over the ranks, test; returns its metrics row."""
    t0, cpu0 = time.perf_counter(), time.process_time()
    sums, seen = _train_epoch(run, epoch)
    run.sgt.sync_k()
    totals = _all_sum(sums.tolist() + [seen], run.device, run.ranks.world)
    test_loss, test_acc = test_loss_and_accuracy(run.test_model, run.bundle.test, run.device,
                                                 run.cfg.batch_size, run.ranks.rank, run.ranks.world)
    k = run.sgt.k_stats()
    return {"epoch": epoch + 1, "train_loss": totals[0] / totals[4], "train_ce": totals[1] / totals[4],
            "train_kl": totals[2] / totals[4], "train_acc": totals[3] / totals[4],
            "test_loss": test_loss, "test_acc": test_acc, **_validate(run, epoch), "k_min": k["min"],
            "k_median": k["median"], "k_max": k["max"], "k_mean": k["mean"],
            "time_s": time.perf_counter() - t0, "cpu_s": time.process_time() - cpu0}


def _validate(run: _Run, epoch: int) -> dict:
    """The validation split's columns of the epoch's row (none without one); the best epoch
    so far counts this one."""
    if run.val is None:
        return {}
    loss, acc = test_loss_and_accuracy(run.test_model, run.val, run.device, run.cfg.batch_size,
                                       run.ranks.rank, run.ranks.world)
    row = {"epoch": epoch + 1, "val_loss": loss, "val_acc": acc}
    return {"val_loss": loss, "val_acc": acc, "best_epoch": best_epoch(run.history + [row], run.cfg.monitor)}


def _stop(run: _Run, history: list[dict]) -> str | None:
    """Why the run ends after ``history`` (.selection.stop_reason), or None."""
    return stop_reason(history, run.cfg.monitor, run.cfg.patience if run.val is not None else None,
                       run.cfg.epochs)


def _selection(run: _Run, history: list[dict]) -> dict | None:
    """With a validation split: how it was made, the best epoch, where the run stopped and why."""
    if run.val is None or not history:
        return None
    reason = _stop(run, history)
    cfg = run.cfg
    return {"val_fraction": cfg.val_fraction, "val_size": len(run.val), "monitor": cfg.monitor,
            "patience": cfg.patience, "best_epoch": history[-1]["best_epoch"],
            "stopped_at": history[-1]["epoch"] if reason else None, "reason": reason}


def _train_epoch(run: _Run, epoch: int) -> tuple[torch.Tensor, int]:
    """The training steps of one epoch; returns the sums (x B) of loss, CE, KL and correct, and B."""
    cfg, device, world = run.cfg, run.device, run.ranks.world
    run.run_model.train()
    loader = make_loader(run.bundle.train, cfg.batch_size, shuffle=True, seed=cfg.seed, epoch=epoch,
                         rank=run.ranks.rank, world_size=world, num_workers=cfg.num_workers,
                         pin_memory=device.type == "cuda")
    sums = torch.zeros(4, dtype=torch.float64, device=device)
    seen = 0
    # A host sync per step costs nothing on CPU; on a GPU check the loss now and then.
    check_every = 1 if device.type == "cpu" else 50
    bar = tqdm(loader, desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=run.ranks.rank != 0 or not cfg.progress,
               leave=False, file=sys.stderr)
    for step, (x, y, index) in enumerate(bar):
        x = x.to(device, non_blocking=True)
        y = y.to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=PRECISIONS[cfg.precision], enabled=cfg.precision != "32"):
            out = run.sgt.loss(x, y, index)
        b = y.shape[0]
        sums += torch.stack([out.loss.detach() * b, out.ce * b, out.kl * b,
                             (out.logits.argmax(1) == y).sum()]).double()
        seen += b
        if (step + 1) % check_every == 0 or step + 1 == len(loader):
            _stop_if_not_finite(run, sums[0], epoch, step)
            bar.set_postfix(loss=f"{sums[0].item() / seen:.4f}", refresh=False)
        run.opt.zero_grad(set_to_none=True)
        run.scaler.scale(out.loss).backward()
        run.scaler.step(run.opt)
        run.scaler.update()
        _raise_if_stop_requested()
    return sums, seen


def _stop_if_not_finite(run: _Run, loss_sum: torch.Tensor, epoch: int, step: int) -> None:
    if not _check_finite(loss_sum, run.ranks.world):
        return
    raise NonFiniteLoss(f"the loss became {loss_sum.item()} at epoch {epoch + 1}, step {step + 1}: "
                        f"stopping (try a lower learning rate); {_kept(run)}")


def _save(run: _Run, row: dict) -> None:
    """Appends the epoch's row; rank 0 writes the checkpoint (every rank's trainer and RNG state),
    then the metrics."""
    epoch, world = row["epoch"], run.ranks.world
    trainers, rngs = zip(*_all_gather((run.sgt.state_dict(), _rng_state()), world))  # one exchange
    history = run.history + [row]
    best = _best_weights(run, row)
    if run.ranks.rank == 0:
        _write(run, f"the checkpoint of epoch {epoch}", lambda: save_checkpoint(run.checkpoint_path, {
            "format": FORMAT, "meta": _meta(run, epoch, history), "model": run.model.state_dict(),
            "optimizer": run.opt.state_dict(), "trainer": list(trainers), "scaler": run.scaler.state_dict(),
            "rng": list(rngs), "epoch": epoch, "history": history,
            "sampler": {"seed": run.cfg.seed, "next_epoch": epoch}, **({"best_model": best} if best else {})}))
    run.history, run.best_model = history, best
    if run.ranks.rank != 0:
        return
    columns = HISTORY_COLUMNS if run.val is None else _with_validation(HISTORY_COLUMNS)
    _write(run, f"the metrics of epoch {epoch}",
           lambda: write_history(run.cfg.out, history, columns, _selection(run, history)))
    print(f"epoch {epoch}/{run.cfg.epochs}: train loss {row['train_loss']:.4f}, test acc "
          f"{100 * row['test_acc']:.2f}%, {_validation_note(run, row)}k min/median/max {row['k_min']:.0f}/"
          f"{row['k_median']:.0f}/{row['k_max']:.0f}, {row['time_s']:.1f}s", file=sys.stderr)


def _best_weights(run: _Run, row: dict) -> dict | None:
    """The best epoch's weights after this epoch's ``row``: a copy of the model's where it is the
    best so far (the model trains on), else the earlier best's."""
    if run.val is None or row["best_epoch"] != row["epoch"]:
        return run.best_model
    return {name: t.detach().clone() for name, t in run.model.state_dict().items()}


def _with_validation(columns: tuple) -> tuple:
    """The history columns with the validation split's after the test columns."""
    at = columns.index("test_acc") + 1
    return columns[:at] + VALIDATION_COLUMNS + columns[at:]


def _validation_note(run: _Run, row: dict) -> str:
    if run.val is None:
        return ""
    note = f"val acc {100 * row['val_acc']:.2f}% (best epoch {row['best_epoch']}), "
    if _stop(run, run.history) == "patience":
        note += f"stopping: {run.cfg.patience} epochs without a better validation {run.cfg.monitor}, "
    return note


def _write(run: _Run, what: str, write) -> None:
    try:
        write()
    except OSError as e:  # a full or read-only disk: the writes are atomic, the last ones intact
        raise CheckpointNotWritten(f"cannot write {what} into {run.cfg.out} ({e}): {_kept(run)}") from e


def _meta(run: _Run, epoch: int, history: list[dict]) -> dict:
    cfg, b = run.cfg, run.bundle
    selection = _selection(run, history)
    return {"dataset": cfg.dataset, "model": cfg.model, "method": cfg.method,
            "in_channels": b.in_channels, "num_classes": b.num_classes, "image_size": b.image_size,
            "mean": b.mean, "std": b.std, "kind": b.kind, "vocab_size": b.vocab_size,
            **run.sgt.k_summary(), "epoch": epoch,
            "metrics": scored_row(history, selection), "config": cfg.options(),
            **({"selection": selection} if selection else {})}


def _plot(run: _Run) -> None:
    from .figures import plot_k_histogram, plot_training_curves

    cfg = run.cfg
    plot_training_curves(run.history, os.path.join(cfg.out, "curves.png"),
                         title=f"{cfg.dataset} {cfg.model} {cfg.method}")
    plot_k_histogram(run.sgt.k_summary(), os.path.join(cfg.out, "k_hist.png"),
                     title=f"k after epoch {run.history[-1]['epoch']}")
