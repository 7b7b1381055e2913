"""Saliency-guided training as an object to drop into any training loop.

    cfg = GuidedConfig(method="smoot", alpha=0.95)
    sgt = SaliencyGuidedTraining(model, cfg, num_samples=len(train_set), input_shape=(1, 28, 28))
    for x, y, index in loader:                 # index: each sample's position in the training set
        out = sgt.loss(x, y, index)
        opt.zero_grad(); out.loss.backward(); opt.step()
    sgt.sync_k()                               # after each epoch, under torch.distributed
    print(sgt.k_stats())                       # {"min", "median", "max", "mean"}

Per step (``method`` "sgt" or "smoot"; SMOOT's Algorithm 2):

1. ``g = d logit[y] / d x``, in eval mode (:func:`.saliency.input_gradient`): a forward of the
   batch and a backward that computes the input gradient only;
2. ``x_masked``: the k least salient units (pixels by default) of each sample replaced through
   ``smoot_ext.mask(x, g, k, unit, abs, fill)``, k = the sample's own entry of the k vector;
3. train-mode forwards of x and x_masked (x does not require grad: the backward stops at the
   first layer's weights); ``loss = CE(f(x), y) + lambda * KL(f(x) || f(x_masked))`` with the
   KL averaged over the batch;
4. SMOOT only: ``k[index] = smoot_ext.update_k(f(x), f(x_masked), k[index], alpha, mu, n, kmin,
   kmax, rounding)``, from the same (train-mode, detached) logits the loss uses, so a sample's k changes
   once per visit, i.e. once per epoch, as ``K_{i+1}(X)`` in the paper.

A model whose class declares ``trunk(x)`` and ``head(h)`` (``forward(x) == head(trunk(x))``, no
mode-dependent layer in the trunk: the paper CNN's convolutions) forwards its trunk once for x:
step 1 runs the head on it in eval mode, step 3 in train mode (``self.reuse_trunk``;
``GuidedConfig(reuse_trunk=False)`` turns it off). The loss, gradients and k are the same, bit
for bit: the trunk's output does not depend on the mode, and no random draw moves. The one cost
added is the first layer's input gradient in the training backward, which nothing reads.

Step 3 runs two forwards of B (no dearer than one of 2B, and cheaper on a CPU whose allocator
maps the larger activations afresh each step), except where the concatenated batch
``[x; x_masked]`` matters: a model with BatchNorm layers (its batch statistics mix the two
halves, as they always have here) and DDP (one forward per backward) get one forward of 2B
(``self.one_forward``). Either way the loss and gradients are the same, to float rounding.

In a loop of your own on a CPU, call :func:`smoot_ext.allocator.keep_freed_memory` once (the
command-line front ends do): with glibc's default allocator every step faults in its large activations anew.

``GuidedConfig(shared_forward=True)`` (opt-in) takes g from the training forward of x instead
of a separate eval-mode forward, saving one forward of B per step. It gives the same result for
models without mode-dependent layers (no dropout, no BatchNorm); otherwise the saliency sees
train mode (this step's dropout draw, batch statistics), and a BatchNorm model normalises x and
x_masked as two batches of B. The paper CNN has dropout: with it the ranking differs.

``"sgt"`` is the same with k fixed (no update); ``"baseline"`` is plain cross-entropy.
k init / min / max are fractions of M (units per sample): ``floor(fraction * M)``.

Sequences (smoot_ext.models.sequences): ``input_shape`` is (T, D), or (T,) for token ids;
``unit="pixel"`` masks whole time steps (tokens), ``"feature"`` single elements. A model that
declares ``embed(ids)`` and an ``embed_dim`` (not None) is masked in embedding space: the step
embeds x (the embedding trains through both forwards), takes the saliency with respect to the
embeddings and masks them, whole tokens at a time. ``lengths`` (one per training sample) makes
the rest padding: the model gets ``lengths=`` on every call, the mask leaves padding alone
(docs/SPEC.md, Padding), and k init, min and max are fractions of each sample's own units:
``floor(fraction * n_i)`` with n_i its length (times D for ``"feature"``); SMOOT's k update is
clamped to the sample's own bounds.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F

from ..checks import ROUNDINGS
from ..ops import FILLS, UNITS, mask, num_units, update_k
from .percent_k import PercentK, counts
from .saliency import input_gradient, logits_and_input_gradient, trunk_and_input_gradient

TRAINING_METHODS = ("baseline", "sgt", "smoot")
K_UPDATES = ("units", "percent")  # SMOOT's K: whole units (the op's step) or a real-valued percentage
DEFAULT_ALPHA = 0.95  # the paper's for MNIST-like data (0.8 for CIFAR-like data)


@dataclass
class GuidedConfig:
    """Options of saliency-guided training (the paper's defaults)."""
    method: str = "smoot"
    lam: float = 1.0           # weight of the KL term
    unit: str = "pixel"        # "pixel": all channels of a position together; "feature": elements
    abs: bool = True           # rank by |gradient| (the paper) or by the signed gradient
    fill: str = "uniform"      # "uniform" (the paper), "constant" (0) or "mean"
    k_init: float = 0.5        # fractions of M
    k_min: float = 0.2
    k_max: float = 0.8
    alpha: float | None = None  # SMOOT's top-1 weight; None: the data's (the trainer), else DEFAULT_ALPHA
    mu: float = 10.0
    n: int = 5
    k_rounding: str = "floor"  # SMOOT's k step: "floor" (the paper's formula) or "trunc" (toward 0)
    k_update: str = "units"    # SMOOT's K: whole units, stepped by the rounded mu*delta; "percent":
    #                            a real-valued percentage (training/percent_k.py)
    backend: str = "auto"      # the ops backend (smoot_ext.ops.BACKENDS)
    shared_forward: bool = False  # saliency from the training forward (see the module docstring)
    reuse_trunk: bool = True   # one forward of a declared trunk for x (see the module docstring)

    def validate(self) -> None:
        """Raises ValueError naming the option, its valid values and the value given."""
        if self.method not in TRAINING_METHODS:
            raise ValueError(f"method: expected one of {', '.join(TRAINING_METHODS)}, got {self.method!r}")
        if self.unit not in UNITS:
            raise ValueError(f"unit: expected one of {', '.join(UNITS)}, got {self.unit!r}")
        if self.fill not in FILLS:
            raise ValueError(f"fill: expected one of {', '.join(FILLS)}, got {self.fill!r}")
        for name in ("k_init", "k_min", "k_max"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{name}: expected a fraction of the units in [0, 1], got {v}")
        if self.k_min > self.k_max:
            raise ValueError(f"k_min: expected k_min <= k_max, got k_min={self.k_min} > "
                             f"k_max={self.k_max}")
        if self.method == "smoot" and not self.k_min <= self.k_init <= self.k_max:
            raise ValueError(f"k_init: expected a value in [k_min, k_max] = [{self.k_min}, "
                             f"{self.k_max}] for method 'smoot', got {self.k_init}")
        if self.alpha is not None and not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"alpha: expected a weight in [0, 1], got {self.alpha}")
        if self.n < 1:
            raise ValueError(f"n: expected >= 1 (top-n classes), got {self.n}")
        if self.k_update not in K_UPDATES:
            raise ValueError(f"k_update: expected one of {', '.join(K_UPDATES)}, got {self.k_update!r}")
        if self.k_rounding not in ROUNDINGS:
            raise ValueError(f"k_rounding: expected one of {', '.join(ROUNDINGS)}, got {self.k_rounding!r}")
        if not math.isfinite(self.lam) or self.lam < 0:
            raise ValueError(f"lam: expected a finite value >= 0, got {self.lam}")
        for name in ("shared_forward", "reuse_trunk"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name}: expected True or False, got {getattr(self, name)!r}")


class StepOutput(NamedTuple):
    loss: torch.Tensor     # the loss to backpropagate
    ce: torch.Tensor       # cross-entropy on the clean batch (detached)
    kl: torch.Tensor       # KL(f(x) || f(x_masked)) (detached; 0 for the baseline)
    logits: torch.Tensor   # f(x) on the clean batch (detached)


class SaliencyGuidedTraining:
    """The loss of baseline / SGT / SMOOT training, and SMOOT's per-sample k vector.

    Args:
        model: the model being trained (may be wrapped in DDP or torch.compile). The saliency
            gradient goes through the module inside DDP, so it triggers no gradient reduction.
        config: a :class:`GuidedConfig`.
        num_samples: the size of the training set (length of the k vector).
        input_shape: one sample's shape, e.g. (C, H, W), which fixes M.
        device: where the k vector lives (the batches' device).
        seed: seeds the generator of the random fill (``self.generator``, CPU).
        lengths: for padded sequences, each training sample's real steps (``num_samples``,).

    ``one_forward`` is True where step 3 forwards ``[x; x_masked]`` as one batch (a BatchNorm
    layer in the model, or DDP), ``reuse_trunk`` where the trunk's forward of x serves steps 1
    and 3 (see the module docstring).
    """

    def __init__(self, model: torch.nn.Module, config: GuidedConfig, *, num_samples: int,
                 input_shape, device="cpu", seed: int = 0, lengths: torch.Tensor | None = None):
        config.validate()
        if num_samples < 1:
            raise ValueError(f"num_samples: expected >= 1, got {num_samples}")
        if lengths is not None and tuple(lengths.shape) != (num_samples,):
            raise ValueError(f"lengths: expected one per training sample, shape ({num_samples},), "
                             f"got {tuple(lengths.shape)}")
        self.model = model
        ddp = isinstance(model, torch.nn.parallel.DistributedDataParallel)
        self.inner = model.module if ddp else model
        # Where [x; x_masked] must be one batch (see the module docstring).
        self.one_forward = ddp or any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
                                      for m in self.inner.modules())
        # A compiled or wrapped model's class declares no trunk: it keeps its own forward.
        self.reuse_trunk = (config.reuse_trunk and not config.shared_forward and not self.one_forward
                            and all(callable(getattr(type(self.inner), f, None)) for f in ("trunk", "head")))
        # Token ids are masked as their embeddings (see the module docstring).
        self.embeds = callable(getattr(self.inner, "embed", None)) and \
            getattr(self.inner, "embed_dim", None) is not None
        if self.embeds:
            if config.shared_forward:
                raise ValueError("shared_forward: expected False for a model that embeds its input "
                                 "(the embedding would get no gradient from the clean forward), got True")
            input_shape = (*input_shape, self.inner.embed_dim)
        self.config = config
        self.alpha = DEFAULT_ALPHA if config.alpha is None else config.alpha
        self.num_units = num_units(torch.empty((1, *input_shape)), config.unit)
        M = self.num_units
        self.k_init = math.floor(config.k_init * M)
        self.kmin = math.floor(config.k_min * M)
        self.kmax = math.floor(config.k_max * M)
        self.generator = torch.Generator().manual_seed(seed)
        device = torch.device(device)
        self.lengths = None if lengths is None else lengths.to(device=device, dtype=torch.int64)
        if self.lengths is not None:
            own = self.lengths * (1 if config.unit == "pixel" else M // input_shape[0])
            self._own_k = {name: (getattr(config, name) * own.double()).floor().long()
                           for name in ("k_init", "k_min", "k_max")}
        self.k, self.percent = None, None
        if config.method == "smoot":
            self.k = (self._own_k["k_init"].clone() if self.lengths is not None else
                      torch.full((num_samples,), self.k_init, dtype=torch.int64, device=device))
            self._touched = torch.zeros(num_samples, dtype=torch.bool, device=device)
            if config.k_update == "percent":
                units = own if self.lengths is not None else torch.full((num_samples,), M, device=device)
                self.percent = PercentK(units, config.k_init, config.k_min, config.k_max)
                self.k = counts(self.percent.value)

    @property
    def method(self) -> str:
        return self.config.method

    def loss(self, x: torch.Tensor, y: torch.Tensor, index: torch.Tensor) -> StepOutput:
        """The step's loss for batch ``(x, y)`` of training samples ``index``; updates SMOOT's k."""
        cfg = self.config
        lengths = None if self.lengths is None else self.lengths[index.to(self.lengths.device)]
        kw = {} if lengths is None else {"lengths": lengths}
        if self.method == "baseline":
            logits = self.model(x, **kw)
            ce = F.cross_entropy(logits, y)
            return StepOutput(ce, ce.detach(), torch.zeros((), device=ce.device), logits.detach())
        if self.embeds:
            x = self.inner.embed(x)
        if cfg.shared_forward:
            # Through the inner module: under DDP the forward of x_masked below is the one DDP sees.
            logits, grad = logits_and_input_gradient(self.inner, x, y, **kw)
        elif self.reuse_trunk:
            trunk_x, grad = trunk_and_input_gradient(self.inner, x, y)
        else:
            grad = input_gradient(self.inner, x, y, **kw)
        if self.method == "smoot":
            index = index.to(self.k.device)
            k = self.k[index]
        elif lengths is not None:
            k = self._own_k["k_init"][index.to(self.lengths.device)]
        else:
            k = self.k_init
        x_masked, _ = mask(x, grad, k, unit=cfg.unit, abs=cfg.abs, fill=cfg.fill,
                           generator=self.generator, backend=cfg.backend, lengths=lengths)
        if cfg.shared_forward:
            logits_masked = self.model(x_masked, **kw)
        elif self.reuse_trunk:
            logits, logits_masked = self.inner.head(trunk_x), self.model(x_masked)
        elif self.one_forward:
            both = {} if lengths is None else {"lengths": torch.cat([lengths, lengths])}
            logits, logits_masked = self.model(torch.cat([x, x_masked]), **both).chunk(2)
        else:
            logits, logits_masked = self.model(x, **kw), self.model(x_masked, **kw)
        # One log-softmax of f(x) for both terms: cross-entropy is nll_loss of it.
        log_p = F.log_softmax(logits, 1)
        ce = F.nll_loss(log_p, y)
        # KL(p || q) with p = f(x), q = f(x_masked), both as log-probabilities for stability.
        kl = F.kl_div(F.log_softmax(logits_masked, 1), log_p, reduction="batchmean", log_target=True)
        if self.method == "smoot":
            self.k[index] = self._update_k(logits.detach().float(), logits_masked.detach().float(), k, index)
            self._touched[index] = True
        return StepOutput(ce + cfg.lam * kl, ce.detach(), kl.detach(), logits.detach())

    def _update_k(self, logits, logits_masked, k, index):
        """SMOOT's k step; with lengths, within each sample's own [k_min, k_max] (the op's
        clamp to [0, M] first, which those bounds lie inside, so the result is the same)."""
        cfg = self.config
        per_sample = self.lengths is not None
        k_new, delta = update_k(logits, logits_masked, k, alpha=self.alpha, mu=cfg.mu, n=cfg.n,
                                kmin=0 if per_sample else self.kmin,
                                kmax=self.num_units if per_sample else self.kmax,
                                rounding=cfg.k_rounding, backend=cfg.backend)
        if self.percent is not None:
            return self.percent.step(index, delta, cfg.mu)
        if per_sample:
            k_new = k_new.clamp(self._own_k["k_min"][index], self._own_k["k_max"][index])
        return k_new

    def sync_k(self) -> None:
        """Makes the k vector the same on every rank (call on all ranks after each epoch).

        Each rank holds the k of the samples it updated since the last call; every other entry
        is still the common value. Entries updated on some rank take that rank's value (the mean,
        rounded down, if a sampler let several ranks update one sample). No-op without
        torch.distributed or for the baseline and SGT.
        """
        import torch.distributed as dist

        if self.k is None:
            return
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            total = torch.where(self._touched, self.k, 0)
            count = self._touched.long()
            dist.all_reduce(total)
            dist.all_reduce(count)
            self.k = torch.where(count > 0, total // count.clamp(min=1), self.k)
            if self.percent is not None:  # the real K likewise; the counts follow from it
                real = torch.where(self._touched, self.percent.value, 0.0)
                dist.all_reduce(real)
                self.percent.value = torch.where(count > 0, real / count.clamp(min=1), self.percent.value)
                self.k = counts(self.percent.value)
        self._touched.zero_()

    def to(self, device) -> SaliencyGuidedTraining:
        """Moves the k vector (and the samples' lengths) to ``device`` (for trainers that place the
        model themselves)."""
        if self.k is not None:
            self.k, self._touched = self.k.to(device), self._touched.to(device)
        if self.lengths is not None:
            self.lengths = self.lengths.to(device)
            self._own_k = {name: k.to(device) for name, k in self._own_k.items()}
        if self.percent is not None:
            self.percent.to(device)
        return self

    def k_stats(self) -> dict:
        """min, median (the lower one for an even count), max and mean of the k vector (SGT's
        per-sample k where samples have lengths: a fraction of each one's own units)."""
        if self.k is not None:
            k = self.k.float()
        elif self.method == "sgt" and self.lengths is not None:
            k = self._own_k["k_init"].float()
        else:
            k = float(self.k_init if self.method == "sgt" else 0)
            return {"min": k, "median": k, "max": k, "mean": k}
        return {"min": k.min().item(), "median": k.median().item(), "max": k.max().item(),
                "mean": k.mean().item()}

    def k_summary(self) -> dict:
        """The k state as a checkpoint's meta and the k histogram show it: M, k init/min/max in
        units, the k vector's statistics and the vector (on the CPU; None without SMOOT)."""
        return {"num_units": self.num_units, "k_init": self.k_init, "kmin": self.kmin, "kmax": self.kmax,
                "k_stats": self.k_stats(), "k": None if self.k is None else self.k.cpu().clone()}

    def state_dict(self) -> dict:
        """Everything a resumed run needs of this object: the k vector (and, with
        ``k_update="percent"``, the real-valued K) and the mask generator."""
        return {"config": asdict(self.config), "num_units": self.num_units,
                "k": None if self.k is None else self.k.cpu(),
                "k_percent": None if self.percent is None else self.percent.value.cpu(),
                "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        saved = (state["config"]["method"], state["config"].get("k_update", "units"), state["num_units"])
        if saved != (self.method, self.config.k_update, self.num_units):
            raise ValueError(f"state_dict: saved for method {saved[0]!r}, k_update {saved[1]!r} with "
                             f"M={saved[2]}, this object has method {self.method!r}, k_update "
                             f"{self.config.k_update!r} with M={self.num_units}")
        if self.k is not None:
            if state["k"].shape != self.k.shape:
                raise ValueError(f"state_dict: k vector of {state['k'].shape[0]} samples, this "
                                 f"object has {self.k.shape[0]}")
            self.k = state["k"].to(device=self.k.device, dtype=self.k.dtype)
            self._touched.zero_()
        if self.percent is not None:
            self.percent.value = state["k_percent"].to(device=self.percent.value.device, dtype=torch.float64)
        self.generator.set_state(state["generator"])
