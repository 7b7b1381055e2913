"""Removal curves: take units away in a saliency order and watch the model's answer.

Orders (as in Quantus' RegionPerturbation and ROAD):

- ``morf``: most relevant first. A faithful map makes accuracy fall fast (small AUC).
- ``lerf``: least relevant first. A faithful map keeps the model right long (large AUC).
- ``random``: a uniformly random order, the same for every model and method (the baseline).

At each level (the fraction of units removed, in [0, 1)) the curves record, per image, whether
the prediction is still right and the softmax probability of the true class. All levels of one
order are removed at once (``imputation.remove_levels``: one ranking per image for the constant
fills, one ``smoot_ext.mask`` call on the batch repeated once per level for the random ones) and
scored in large forward passes; a level that removes nothing reuses the clean forward pass.

Ties: units of equal score are removed lower index first, in every order and on every backend
(``ranking`` and the mask op's stable order), so a curve repeats bit for bit. Quantus 0.6.0 ranks
with ``np.argsort(-a)`` (numpy's unstable quicksort), which orders ties as its sort happens to
leave them: on maps without ties the two libraries' curves are bit-identical, on maps with ties
(zero gradients) they can differ in the rows that hold ties (benchmarks/eval_vs_quantus.py).

Padded sequences (``lengths``): the model gets ``lengths=`` on every call, the levels are
fractions of each sample's own units (k = floor(level * n_b)) and ``smoot_ext.mask(lengths=)``
never ranks, removes or fills from padding.
"""
from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import torch

from ..allocator import freed_memory_kept
from .choices import check_choices
from .imputation import Imputation, remove_levels
from .results import ORDERS
from .units import check_unit

DEFAULT_LEVELS = tuple(i / 10 for i in range(10))
DEFAULT_PERCENTAGES = tuple(round(100 * v) for v in DEFAULT_LEVELS)  # the older spelling, smoot-reproduce's
TRAINING_FILL = Imputation("uniform")


def check_levels(levels: Sequence[float], option: str = "levels") -> list[float]:
    """At least two strictly increasing fractions in [0, 1): an AUC needs an interval, and at 1
    nothing is left to rank (nor, for ROAD, to impute from)."""
    try:
        lv = [float(v) for v in levels]
    except (TypeError, ValueError) as e:
        raise ValueError(f"{option}: expected numbers, got {levels!r}") from e
    if len(lv) < 2:
        raise ValueError(f"{option}: expected at least 2 levels in [0, 1), got {lv}")
    bad = [v for v in lv if not 0.0 <= v < 1.0]
    if bad:
        raise ValueError(f"{option}: every level must lie in [0, 1) (a fraction removed), got {bad} in {lv}")
    if any(b <= a for a, b in zip(lv, lv[1:])):
        raise ValueError(f"{option}: expected strictly increasing levels, got {lv}")
    return lv


def levels_from_percentages(percentages: Sequence[float]) -> list[float]:
    """The older percent spelling (0..100) of the levels, checked under its own option name."""
    pct = [float(v) for v in percentages]
    bad = [v for v in pct if not 0.0 <= v < 100.0]
    if bad:
        raise ValueError(f"percentages: every value must lie in [0, 100), got {bad} in {pct}")
    return check_levels([v / 100.0 for v in pct], option="percentages")


def check_orders(orders: Sequence[str]) -> list[str]:
    return check_choices(orders, ORDERS, "orders", "order")


def counts_removed(levels: Sequence[float], num_units: int) -> list[int]:
    """k = floor(level * M) units removed at each level (the tolerance stops a product that is
    whole in decimal from rounding down in binary)."""
    return [int(np.floor(lv * num_units + 1e-9)) for lv in levels]


def counts_removed_per_row(levels: Sequence[float], real: torch.Tensor) -> torch.Tensor:
    """(L, B) k = floor(level * n_b), n_b the real units of row b ((B, M) bool ``real``), as
    ``counts_removed`` rounds them."""
    n = real.sum(dim=1).double().cpu().numpy()
    return torch.as_tensor(np.floor(np.outer(levels, n) + 1e-9), dtype=torch.int64, device=real.device)


def random_scores(batch: int, units: int, generator: torch.Generator | None, device) -> torch.Tensor:
    """i.i.d. uniform scores give a uniformly random order (drawn on the CPU: device-independent)."""
    return torch.rand(batch, units, generator=generator, device="cpu").to(device)


def ranking(scores: torch.Tensor, order: str) -> torch.Tensor:
    """The score whose k lowest units the order removes: -saliency for MoRF (so ties go to the
    lower index, as for LeRF), the saliency for LeRF, the random scores for random."""
    return -scores if order == "morf" else scores


@torch.inference_mode()
def outcome(logits: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(correct bool, softmax probability of the true class float32), one per row."""
    prob = torch.softmax(logits.float(), dim=1).gather(1, y.view(-1, 1)).squeeze(1)
    return logits.argmax(dim=1) == y, prob


# Inputs per forward pass of the removal curves: a batch whose inputs fill at most this many bytes,
# at most MAX_FORWARD_BATCH, by the process' allocator setting. benchmarks/forward_batch.py (the
# trained paper CNN on 8x8, 16x16 and 28x28, 1 and 2 threads; benchmarks/results/forward_batch.csv)
# timed the forward loop at each batch: with freed memory kept (smoot_ext.allocator, as
# smoot-evaluate runs), 4 MiB was within 0-9% of the fastest batch and 32-64 inputs lost up to
# 2.4x; under glibc's default malloc, a batch whose activations pass its mmap threshold faults them
# in anew on every call (1024 inputs lost 1.2-2.0x) and 128 KiB was within 0-9% (--default-malloc).
FORWARD_BYTES = {True: 4 * 2**20, False: 128 * 2**10}  # by freed_memory_kept()
MAX_FORWARD_BATCH = 1024


def default_forward_batch(x: torch.Tensor) -> int:
    """The forward batch for inputs like ``x`` (a batch): ``FORWARD_BYTES`` of them, at least 16.
    A size in bytes, not a timed calibration, so the same inputs are always forwarded in the same
    batches (a kernel may round differently at another batch size) and scores repeat bit for bit
    in a process set up the same way. The byte cap also bounds the memory of large inputs
    (224x224 images: 16). Off the CPU, ``MAX_FORWARD_BATCH``: the rule was measured on the CPU only."""
    if x.device.type != "cpu":
        return MAX_FORWARD_BATCH
    per_input = max(1, x[0].numel() * x.element_size())
    return max(16, min(MAX_FORWARD_BATCH, FORWARD_BYTES[freed_memory_kept()] // per_input))


def prepare_model(model: torch.nn.Module, device) -> torch.nn.Module:
    """Channels-last weights on the CPU: oneDNN's convolutions then skip the layout conversion of
    every call and take their faster NHWC kernels (benchmarks/eval_throughput.py measures it); the
    NCHW inputs stay as they are (a convolution follows its weight's layout)."""
    if torch.device(device).type == "cpu":
        model = model.to(memory_format=torch.channels_last)
    return model


@torch.inference_mode()
def forward(model: torch.nn.Module, x: torch.Tensor, batch: int | None = None,
            lengths: torch.Tensor | None = None) -> torch.Tensor:
    """The model's logits for ``x`` in batches of ``batch`` inputs (None: ``default_forward_batch``)."""
    batch = batch or default_forward_batch(x)
    if lengths is None:
        return torch.cat([model(x[i:i + batch]) for i in range(0, x.shape[0], batch)])
    return torch.cat([model(x[i:i + batch], lengths=lengths[i:i + batch]) for i in range(0, x.shape[0], batch)])


@torch.inference_mode()
def removal_curves(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    scores: torch.Tensor,
    levels: Sequence[float],
    *,
    order: str = "morf",
    imputation: Imputation = TRAINING_FILL,
    unit: str = "pixel",
    seed: int = 0,
    clean_logits: torch.Tensor | None = None,
    forward_batch: int | None = None,
    timing: dict | None = None,
    lengths: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image removal curves of the batch ``x``: (correct (B, L) bool, probability (B, L)),
    one column per level, for units ranked by ``scores`` (B, M) in ``order`` (for "random",
    ``scores`` are the random scores). ``seed`` fixes the fill's random draws; passing the same
    seed for every model and method gives them the same draws (common random numbers, so paired
    differences carry less noise). ``clean_logits`` saves the forward pass of level 0.
    ``forward_batch``: inputs per forward pass (None: ``default_forward_batch``). ``timing``,
    if given, accumulates the seconds spent removing ("mask_s") and scoring ("forward_s")."""
    check_orders([order])
    u = check_unit(unit, "unit")
    B, M = scores.shape
    if B != x.shape[0] or M != u.count(x):
        raise ValueError(f"scores: expected shape ({x.shape[0]}, {u.count(x)}) (one per {unit} of x), "
                         f"got {tuple(scores.shape)}")
    real = u.real(lengths, x)
    ks = (torch.tensor(counts_removed(levels, M), device=x.device).unsqueeze(1).expand(-1, B) if real is None
          else counts_removed_per_row(levels, real))  # (L, B)
    correct = torch.empty(B, len(ks), dtype=torch.bool, device=x.device)
    prob = torch.empty(B, len(ks), dtype=torch.float32, device=x.device)
    removes = ks.any(dim=1).tolist()  # one host sync, not one a level
    todo = [i for i, r in enumerate(removes) if r]
    same = [i for i, r in enumerate(removes) if not r]  # levels that remove nothing: the clean outcome
    clean = bool(same) and clean_logits is None  # then x goes in front of the removals, in the same passes
    t0 = clock(x.device)
    parts = [x] if clean else []
    if todo:
        parts.append(remove_levels(x, ranking(scores.float(), order), ks[todo], imputation, unit=unit, seed=seed,
                                   lengths=lengths))
    t1 = clock(x.device)
    if parts:
        xs = parts[0] if len(parts) == 1 else torch.cat(parts)  # one part: no copy
        rows = len(xs) // B
        c, p = outcome(forward(model, xs, forward_batch, None if lengths is None else lengths.repeat(rows)),
                       y.repeat(rows))
        c, p = c.view(rows, B).T, p.view(rows, B).T
        correct[:, todo], prob[:, todo] = c[:, int(clean):], p[:, int(clean):]
    if timing is not None:
        timing["mask_s"] += t1 - t0
        timing["forward_s"] += clock(x.device) - t1
    if same:
        c0, p0 = (c[:, 0], p[:, 0]) if clean else outcome(clean_logits, y)
        for i in same:
            correct[:, i], prob[:, i] = c0, p0
    return correct, prob


def clock(device) -> float:
    """perf_counter once the device's queued work is done (CUDA runs asynchronously), so the
    phase timings attribute GPU time to the phase that queued it."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()

