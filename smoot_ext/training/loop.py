"""The training loop behind ``python/train.py``: epochs, metrics, checkpoints, resume, DDP.

    from smoot_ext.training.loop import TrainConfig, train
    result = train(TrainConfig(dataset="digits", method="smoot", out="runs/digits"))
    result.history, result.model, result.guided   # per-epoch metrics, the bare model, the k state

``train`` writes into ``config.out``:

- ``checkpoint.pt`` after every epoch, atomically (see :mod:`.checkpoint`): model, optimizer,
  the SMOOT k vector, every rank's RNG states (torch CPU and CUDA, numpy, python, the mask
  generator) and the epoch; the batch order is a function of (seed, epoch), so ``resume=True``
  continues bit for bit where the run stopped;
- ``metrics.jsonl`` and ``metrics.csv``: one row per epoch (``METRICS``);
- ``curves.png`` (train loss, test accuracy, k min/median/max per epoch) and ``k_hist.png``
  (the final k vector) at the end.

``precision`` "bf16" runs each training step under ``torch.autocast`` to bfloat16 (CPU and
CUDA), "fp16" under autocast to float16 with a ``GradScaler`` (CUDA); the test pass stays float32.

A NaN or infinite loss stops the run with :class:`NonFiniteLoss` before the step is applied;
the last checkpoint (the last finished epoch) is left as it was.

On a CPU, call :func:`smoot_ext.allocator.keep_freed_memory` once per process first (the
command-line front ends do): it is a process-wide setting, so ``train`` leaves it to its caller.

Under torchrun (``WORLD_SIZE`` > 1) it joins the process group (gloo on CPU, NCCL on CUDA),
wraps the model in DDP, gives each rank a disjoint share of every epoch's samples and makes the
k vector consistent after each epoch (:meth:`SaliencyGuidedTraining.sync_k`); rank 0 writes.
"""
from __future__ import annotations

import csv
import json
import os
import random
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from typing import NamedTuple

from .._extras import require

require("train", "tqdm")

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from tqdm import tqdm

from ..data import DATASET_KINDS, DATASETS, default_data_dir, load_dataset, make_loader
from ..models import IMAGE_MODELS, MODELS, build_model
from ..ops import BACKENDS
from .checkpoint import FORMAT, load_checkpoint, save_checkpoint
from .guided import GuidedConfig, SaliencyGuidedTraining
from .saliency import eval_mode

OPTIMIZERS = ("adadelta", "sgd", "adam", "adamw")
# The training step's arithmetic: float32, or torch.autocast to bfloat16 / float16 (fp16 needs a
# GradScaler against underflowing gradients, and CUDA: CPU autocast's float16 is not what users run).
PRECISIONS = {"32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
# The paper trains 100 epochs; digits, synthetic and the sequence sets need far fewer.
_SEQUENCES = [name for name, kind in DATASET_KINDS.items() if kind != "image"]
DEFAULT_EPOCHS = {"digits": 30, "synthetic": 20, **dict.fromkeys(_SEQUENCES, 20)}
DEFAULT_BATCH = {"digits": 64, "synthetic": 64, **dict.fromkeys(_SEQUENCES, 64)}
# The model when --model is not given, per kind of data.
DEFAULT_MODEL = {"image": "cnn", "series": "lstm", "text": "bilstm"}
# 8x8 images leave too little work per op to share between threads; elsewhere torch's default.
DEFAULT_THREADS = {"digits": 1}
# Adadelta, as in the paper; the transformer takes a gentler step.
DEFAULT_LR = {"cnn": 1.0, "resnet": 1.0, "deit_tiny": 0.001, "lstm": 1.0, "bilstm": 1.0,
              "transformer": 0.3, "tcn": 1.0, "hf-bert": 0.3}
METRICS = ("epoch", "train_loss", "train_ce", "train_kl", "train_acc", "test_loss", "test_acc",
           "k_min", "k_median", "k_max", "k_mean", "time_s", "cpu_s")
# The metrics that measure the machine, not the run: wall seconds and this process's CPU seconds
# (all its threads) per epoch; the rest repeat bit for bit on a resume or another rank.
TIMINGS = ("time_s", "cpu_s")
# Options a resumed run may change: the rest come from the checkpoint.
RESUME_OVERRIDES = ("epochs", "device", "num_workers", "out", "resume", "progress", "threads",
                    "compile")


class TrainResult(NamedTuple):
    history: list[dict]                 # one METRICS row per epoch
    model: torch.nn.Module              # the trained model, without DDP/compile wrappers
    guided: SaliencyGuidedTraining      # its k vector (SMOOT) and mask generator


class NonFiniteLoss(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


@dataclass
class TrainConfig(GuidedConfig):
    """The trainer's options: GuidedConfig's (the step), then the run's."""
    alpha: float | None = None       # None: the dataset's (0.95 MNIST-like, 0.8 CIFAR)
    dataset: str = "digits"
    data_dir: str = field(default_factory=default_data_dir)
    download: bool = False
    subset: int | None = None        # train on this many samples (a seeded random choice)
    test_subset: int | None = None
    model: str | None = None         # None: DEFAULT_MODEL for the dataset's kind
    pretrained: str = "auto"         # DeiT only: "auto" | "yes" | "no"
    epochs: int | None = None        # None: DEFAULT_EPOCHS[dataset] or 100 (the paper)
    batch_size: int | None = None    # None: DEFAULT_BATCH[dataset] or 256 (the paper)
    optimizer: str = "adadelta"
    lr: float | None = None          # None: DEFAULT_LR[model]
    seed: int = 0
    device: str = "auto"
    num_workers: int = 0
    compile: bool = False
    precision: str = "32"            # PRECISIONS: "32", "bf16" (autocast), "fp16" (autocast + GradScaler)
    threads: int | None = None       # torch CPU threads; 0: torch's; None: DEFAULT_THREADS or 0
    progress: bool = True
    out: str | None = None           # None: runs/<dataset>-<method>[-<model> if not the default]
    resume: bool = False

    def resolved(self) -> TrainConfig:
        """A copy with every None default filled in and every option checked."""
        c = TrainConfig(**asdict(self))
        if c.dataset in DATASET_KINDS and c.model is None:
            c.model = DEFAULT_MODEL[DATASET_KINDS[c.dataset]]
        for name, valid in (("dataset", DATASETS), ("model", MODELS), ("optimizer", OPTIMIZERS),
                            ("backend", BACKENDS), ("pretrained", ("auto", "yes", "no")),
                            ("precision", tuple(PRECISIONS))):
            if getattr(c, name) not in valid:
                raise ValueError(f"--{name.replace('_', '-')}: expected one of "
                                 f"{', '.join(valid)}, got {getattr(c, name)!r}")
        kind = DATASET_KINDS[c.dataset]
        if (kind == "image") != (c.model in IMAGE_MODELS):
            fits = [m for m in MODELS if (m in IMAGE_MODELS) == (kind == "image")]
            raise ValueError(f"--model: dataset {c.dataset!r} holds {kind} data: expected one of "
                             f"{', '.join(fits)}, got {c.model!r}")
        c.epochs = DEFAULT_EPOCHS.get(c.dataset, 100) if c.epochs is None else c.epochs
        c.batch_size = DEFAULT_BATCH.get(c.dataset, 256) if c.batch_size is None else c.batch_size
        c.lr = DEFAULT_LR[c.model] if c.lr is None else c.lr
        c.threads = DEFAULT_THREADS.get(c.dataset, 0) if c.threads is None else c.threads
        c.out = c.out or os.path.join(
            "runs", f"{c.dataset}-{c.method}" + ("" if c.model == DEFAULT_MODEL[kind] else f"-{c.model}"))
        for name, low in (("epochs", 1), ("batch_size", 1), ("num_workers", 0), ("threads", 0),
                          ("subset", 1), ("test_subset", 1)):
            v = getattr(c, name)
            if v is not None and v < low:
                raise ValueError(f"--{name.replace('_', '-')}: expected an integer >= {low}, got {v}")
        if not c.lr > 0:
            raise ValueError(f"--lr: expected a learning rate > 0, got {c.lr}")
        try:
            c.guided(alpha=0.95 if c.alpha is None else c.alpha).validate()
        except ValueError as e:  # name the command-line option, not the field
            name, rest = str(e).split(":", 1)
            raise ValueError(f"--{name.replace('_', '-').replace('lam', 'lambda')}:{rest}") from None
        return c

    def validate(self) -> None:
        self.resolved()

    def guided(self, alpha: float) -> GuidedConfig:
        """The step's options, with the dataset's alpha filled in."""
        step = {f.name: getattr(self, f.name) for f in fields(GuidedConfig)}
        return GuidedConfig(**{**step, "alpha": alpha})


def _device(name: str, local_rank: int) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(name)
    except RuntimeError:
        dev = None
    if dev is None or dev.type not in ("cpu", "cuda"):
        raise ValueError(f"--device: expected auto, cpu, cuda or cuda:N, got {name!r}")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"--device: {name!r} requested but CUDA is not available (use cpu)")
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


def _rng_state(sgt: SaliencyGuidedTraining) -> dict:
    return {"torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
            "numpy": np.random.get_state(), "python": random.getstate(),
            "mask_generator": sgt.generator.get_state()}


def _set_rng_state(state: dict, sgt: SaliencyGuidedTraining) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    sgt.generator.set_state(state["mask_generator"])


def _all_sum(values: list[float], device, world: int) -> list[float]:
    if world == 1:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


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


def _write_metrics(out: str, history: list[dict]) -> None:
    # Rewritten whole from the checkpointed history: a resumed run never duplicates rows.
    for name, write in (("metrics.jsonl", lambda f: f.writelines(json.dumps(r) + "\n" for r in history)),
                        ("metrics.csv", lambda f: _csv(f, history))):
        tmp = os.path.join(out, f".{name}.tmp")
        with open(tmp, "w", newline="") as f:
            write(f)
        os.replace(tmp, os.path.join(out, name))


def _csv(f, history):
    w = csv.DictWriter(f, fieldnames=METRICS)
    w.writeheader()
    w.writerows(history)


def _meta(cfg: TrainConfig, bundle, sgt: SaliencyGuidedTraining, epoch: int, history) -> dict:
    return {"dataset": cfg.dataset, "model": cfg.model, "method": cfg.method,
            "in_channels": bundle.in_channels, "num_classes": bundle.num_classes,
            "image_size": bundle.image_size, "mean": bundle.mean, "std": bundle.std,
            "kind": bundle.kind, "vocab_size": bundle.vocab_size,
            "num_units": sgt.num_units, "k_init": sgt.k_init, "kmin": sgt.kmin, "kmax": sgt.kmax,
            "epoch": epoch, "k_stats": sgt.k_stats(),
            "k": None if sgt.k is None else sgt.k.cpu().clone(),
            "metrics": history[-1] if history else None, "config": asdict(cfg)}


def _check_finite(loss_sum: torch.Tensor, world: int) -> bool:
    bad = (~torch.isfinite(loss_sum)).to(torch.int32)
    if world > 1:  # every rank must stop together, or the others hang in the next all_reduce
        dist.all_reduce(bad, op=dist.ReduceOp.MAX)
    return bool(bad.item())


def train(config: TrainConfig) -> TrainResult:
    """Trains as ``config`` says (see the module docstring)."""
    cfg = config.resolved()
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = _device(cfg.device, local_rank)
    ckpt_path = os.path.join(cfg.out, "checkpoint.pt")
    state = None
    if cfg.resume:
        if not os.path.isfile(ckpt_path):
            raise FileNotFoundError(f"--resume: no checkpoint at {ckpt_path} (check --out)")
        state = load_checkpoint(ckpt_path)
        saved = dict(state["meta"]["config"])
        saved.update({name: getattr(cfg, name) for name in RESUME_OVERRIDES})
        cfg = TrainConfig(**saved).resolved()
    if cfg.precision == "fp16" and device.type != "cuda":  # on a resume, the checkpoint's precision
        raise ValueError(f"--precision: fp16 (with a GradScaler) needs a CUDA device, got {device}; "
                         f"on the CPU use bf16")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    own_group = world > 1 and not dist.is_initialized()
    if own_group:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    try:
        return _run(cfg, state, device, rank, world, ckpt_path)
    finally:
        if own_group:
            dist.destroy_process_group()


def _run(cfg: TrainConfig, state, device, rank: int, world: int, ckpt_path: str) -> TrainResult:
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if world > 1 and rank != 0:
        dist.barrier()  # rank 0 downloads (if asked) before the others read
    bundle = load_dataset(cfg.dataset, cfg.data_dir, download=cfg.download and rank == 0,
                          subset=cfg.subset, test_subset=cfg.test_subset, seed=cfg.seed)
    if world > 1 and rank == 0:
        dist.barrier()
    if len(bundle.train) < world:
        raise ValueError(f"--subset: {len(bundle.train)} training samples cannot be shared "
                         f"out over {world} processes")
    alpha = bundle.alpha if cfg.alpha is None else cfg.alpha
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)  # the same initial weights on every rank
    pretrained = {"auto": "auto", "yes": True, "no": False}[cfg.pretrained]
    model = build_model(cfg.model, bundle.in_channels, bundle.num_classes, bundle.image_size,
                        pretrained=pretrained if state is None else False,
                        vocab_size=bundle.vocab_size).to(device)
    opt = _optimizer(cfg.optimizer, model.parameters(), cfg.lr)
    # Disabled (a pass-through) but for fp16; the checkpoint keeps its scale for a resume.
    scaler = torch.amp.GradScaler(device.type, enabled=cfg.precision == "fp16")
    torch.manual_seed(cfg.seed + 7919 * rank)  # dropout draws differ across ranks
    run_model = torch.compile(model) if cfg.compile else model
    if world > 1:
        run_model = torch.nn.parallel.DistributedDataParallel(
            run_model, device_ids=[device.index] if device.type == "cuda" else None)
    sgt = SaliencyGuidedTraining(run_model, cfg.guided(alpha), num_samples=len(bundle.train),
                                 input_shape=tuple(bundle.train.inputs.shape[1:]), device=device,
                                 seed=cfg.seed * 1_000_003 + rank, lengths=bundle.train.lengths)
    history, start = [], 0
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sgt.load_state_dict(state["trainer"])
        scaler.load_state_dict(state.get("scaler") or {})
        if len(state["rng"]) != world:
            raise ValueError(f"--resume: the checkpoint was written by {len(state['rng'])} "
                             f"process(es), this run has {world}: bit-for-bit resume needs the same")
        _set_rng_state(state["rng"][rank], sgt)
        history, start = state["history"], state["epoch"]
        if rank == 0:
            print(f"resuming {ckpt_path} after epoch {start} (options from the checkpoint; "
                  f"taken from the command line: {', '.join(RESUME_OVERRIDES)})", file=sys.stderr)
    if rank == 0:
        os.makedirs(cfg.out, exist_ok=True)
    for epoch in range(start, cfg.epochs):
        t0, cpu0 = time.perf_counter(), time.process_time()
        run_model.train()
        loader = make_loader(bundle.train, cfg.batch_size, shuffle=True, seed=cfg.seed, epoch=epoch,
                             rank=rank, world_size=world, num_workers=cfg.num_workers,
                             pin_memory=device.type == "cuda")
        sums = torch.zeros(4, dtype=torch.float64, device=device)  # loss, ce, kl, correct (x B)
        seen = 0
        # A host sync per step costs nothing on CPU; on a GPU check the loss now and then.
        check_every = 1 if device.type == "cpu" else 50
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=rank != 0 or not cfg.progress,
                   leave=False, file=sys.stderr)
        for step, (x, y, index) in enumerate(bar):
            x = x.to(device, non_blocking=True)
            y = y.to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=PRECISIONS[cfg.precision], enabled=cfg.precision != "32"):
                out = sgt.loss(x, y, index)
            b = y.shape[0]
            sums += torch.stack([out.loss.detach() * b, out.ce * b, out.kl * b,
                                 (out.logits.argmax(1) == y).sum()]).double()
            seen += b
            if (step + 1) % check_every == 0 or step + 1 == len(loader):
                if _check_finite(sums[0], world):
                    raise NonFiniteLoss(
                        f"the loss became {sums[0].item()} at epoch {epoch + 1}, step {step + 1}: "
                        f"stopping (try a lower --lr). " + (
                            f"The last good checkpoint, after epoch {history[-1]['epoch']}, is "
                            f"kept at {ckpt_path}" if history else "No checkpoint was written."))
                bar.set_postfix(loss=f"{sums[0].item() / seen:.4f}", refresh=False)
            opt.zero_grad(set_to_none=True)
            scaler.scale(out.loss).backward()
            scaler.step(opt)
            scaler.update()
        sgt.sync_k()
        totals = _all_sum(sums.tolist() + [seen], device, world)
        test_loss, test_acc = test_loss_and_accuracy(sgt.inner, bundle.test, device, cfg.batch_size, rank, world)
        k = sgt.k_stats()
        row = {"epoch": epoch + 1, "train_loss": totals[0] / totals[4], "train_ce": totals[1] / totals[4],
               "train_kl": totals[2] / totals[4], "train_acc": totals[3] / totals[4],
               "test_loss": test_loss, "test_acc": test_acc, "k_min": k["min"],
               "k_median": k["median"], "k_max": k["max"], "k_mean": k["mean"],
               "time_s": time.perf_counter() - t0, "cpu_s": time.process_time() - cpu0}
        history.append(row)
        rngs = [_rng_state(sgt)]
        if world > 1:
            rngs = [None] * world
            dist.all_gather_object(rngs, _rng_state(sgt))
        if rank == 0:
            save_checkpoint(ckpt_path, {
                "format": FORMAT, "meta": _meta(cfg, bundle, sgt, epoch + 1, history),
                "model": model.state_dict(), "optimizer": opt.state_dict(),
                "trainer": sgt.state_dict(), "scaler": scaler.state_dict(), "rng": rngs, "epoch": epoch + 1,
                "history": history, "sampler": {"seed": cfg.seed, "next_epoch": epoch + 1}})
            _write_metrics(cfg.out, history)
            print(f"epoch {epoch + 1}/{cfg.epochs}: train loss {row['train_loss']:.4f}, test acc "
                  f"{100 * test_acc:.2f}%, k min/median/max {k['min']:.0f}/{k['median']:.0f}/"
                  f"{k['max']:.0f}, {row['time_s']:.1f}s", file=sys.stderr)
    if rank == 0 and history:
        from .figures import plot_k_histogram, plot_training_curves

        plot_training_curves(history, os.path.join(cfg.out, "curves.png"),
                             title=f"{cfg.dataset} {cfg.model} {cfg.method}")
        plot_k_histogram(sgt.k, os.path.join(cfg.out, "k_hist.png"), num_units=sgt.num_units,
                         kmin=sgt.kmin, kmax=sgt.kmax, title=f"k after epoch {history[-1]['epoch']}")
    return TrainResult(history, model, sgt)
