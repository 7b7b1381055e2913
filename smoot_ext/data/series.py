"""The time-series benchmark of Ismail et al. 2020 ("Benchmarking Deep Learning Interpretability
in Time Series Predictions", NeurIPS 2020; its generator is TS-Interpretability-Benchmark,
``Scripts/createSimulationDataProcesses.py`` with ``run_benchmark.py``'s settings), generated in
process: 50 time steps x 50 features, 2 classes, each shape on each background.

Backgrounds: ``ts-<shape>`` is their "Box": N(0, 1) everywhere, N(target, 1) inside the box;
``ts-<shape>-<process>`` draws every feature from a process of :mod:`.processes` (harmonic, gp,
pseudo-periodic, ar, car, narma; irregular times, noise sd 0.3) and adds the target inside the box.
The target is -1 for label 0 and +1 for label 1, so the box's sign says the class.

Shapes (box steps x features from first step, first feature; "moving": drawn per sample, first
step uniform in [0, T - steps), first feature in [0, F - features), as their generator draws):

- ``middle`` 30 x 30 from (10, 10); ``small-middle`` 14 x 14 from (18, 18);
- ``rare-time`` 6 x 40 from (22, 5); ``rare-feature`` 40 x 6 from (5, 22);
- ``moving-middle`` 30 x 30, ``moving-small-middle`` 15 x 15, ``moving-rare-time`` 6 x 40,
  ``moving-rare-feature`` 40 x 6;
- ``positional-time``, ``positional-feature``: 20 x 20 with target +1 in both classes, so where
  the box is says the class, not its sign. As their code pairs them ("PostionalTime" freezes the
  features): in ``positional-time`` the box's first feature is 1 (label 1) or 29 (label 0) and
  its first step is drawn; in ``positional-feature`` its first step is 1 or 29 and its first
  feature is drawn.

The box is the ground truth: ``masks`` is (N, T, F) bool, True inside it. Each variant draws
from its own seed (derived from its name), training set then test set. ``load_series`` min-max
scales every element (step, feature) by its minimum and range over the training set, applied to
both sets, as their training script does (``MinMaxScaler`` on the flattened samples; a constant
element keeps range 1; test values may leave [0, 1]).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .processes import PROCESSES, background
from .samples import IndexedSamples

STEPS, FEATURES = 50, 50
SERIES_SEED = 0  # one fixed set per variant, as for the synthetic images: --seed chooses subsets only


@dataclass(frozen=True)
class Box:
    """Box size and where it starts on each axis: an int (fixed), None (drawn per sample) or a
    pair (the start for label 0, for label 1: positional, the class sets the place)."""

    steps: int
    features: int
    first_step: int | None | tuple[int, int]
    first_feature: int | None | tuple[int, int]

    @property
    def positional(self) -> bool:
        return isinstance(self.first_step, tuple) or isinstance(self.first_feature, tuple)


SHAPES = {
    "middle": Box(30, 30, 10, 10),
    "small-middle": Box(14, 14, 18, 18),
    "moving-middle": Box(30, 30, None, None),
    "moving-small-middle": Box(15, 15, None, None),
    "rare-time": Box(6, 40, 22, 5),
    "moving-rare-time": Box(6, 40, None, None),
    "rare-feature": Box(40, 6, 5, 22),
    "moving-rare-feature": Box(40, 6, None, None),
    "positional-time": Box(20, 20, None, (29, 1)),
    "positional-feature": Box(20, 20, (29, 1), None),
}
# name: (shape, process); process None is the Gaussian "Box" background
SERIES = {f"ts-{shape}": (shape, None) for shape in SHAPES} | {
    f"ts-{shape}-{process}": (shape, process) for process in PROCESSES for shape in SHAPES}
SERIES_DATASETS = tuple(SERIES)


def series_rng(name: str) -> np.random.Generator:
    """The generator of variant ``name``: its own stream, keyed by the name's bytes, so variants
    are independent and each is the same on every run and machine."""
    return np.random.default_rng(np.random.SeedSequence(SERIES_SEED, spawn_key=tuple(name.encode())))


def _starts(start, span: int, total: int, labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    if start is None:
        return rng.integers(0, total - span, len(labels))
    if isinstance(start, tuple):
        return np.asarray(start)[labels]
    return np.full(len(labels), start)


def _span(first: np.ndarray, size: int, total: int) -> np.ndarray:
    """(N, total) bool: True on [first, first + size)."""
    at = np.arange(total)
    return (at >= first[:, None]) & (at < first[:, None] + size)


def box_masks(box: Box, labels: np.ndarray, rng: np.random.Generator, steps: int = STEPS,
              features: int = FEATURES) -> np.ndarray:
    """(N, steps, features) bool: each sample's box, its place drawn from ``rng`` where it moves."""
    t0 = _starts(box.first_step, box.steps, steps, labels, rng)
    f0 = _starts(box.first_feature, box.features, features, labels, rng)
    return _span(t0, box.steps, steps)[:, :, None] & _span(f0, box.features, features)[:, None, :]


def make_series(name: str, n: int, rng: np.random.Generator, steps: int = STEPS,
                features: int = FEATURES) -> IndexedSamples:
    """``n`` unscaled samples of variant ``name`` drawn from ``rng``: (N, T, F), labels, box masks."""
    if name not in SERIES:
        raise ValueError(f"name: expected one of the series datasets (ts-...), got {name!r}")
    shape, process = SERIES[name]
    box = SHAPES[shape]
    labels = rng.integers(0, 2, n)
    masks = box_masks(box, labels, rng, steps, features)
    target = np.ones(n) if box.positional else 2.0 * labels - 1
    noise = (rng.standard_normal((n, steps, features)) if process is None
             else background(process, rng, n, steps, features))
    x = noise + target[:, None, None] * masks
    return IndexedSamples(torch.from_numpy(x), torch.from_numpy(labels), torch.from_numpy(masks))


def fit_min_max(inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each element's minimum and range over the samples (dim 0); a zero range becomes 1, as in
    scikit-learn's ``MinMaxScaler``, so a constant element maps to 0 instead of NaN."""
    low = inputs.amin(0)
    span = inputs.amax(0) - low
    return low, torch.where(span > 0, span, torch.ones_like(span))


def scaled(samples: IndexedSamples, low: torch.Tensor, span: torch.Tensor) -> IndexedSamples:
    return IndexedSamples((samples.inputs - low) / span, samples.labels, samples.masks)


def load_series(name: str, n_train: int = 1000, n_test: int = 500):
    """(train, test, classes) of variant ``name`` (their script's 1000 training samples),
    min-max scaled with the training set's statistics."""
    rng = series_rng(name)
    train, test = make_series(name, n_train, rng), make_series(name, n_test, rng)
    low, span = fit_min_max(train.inputs)
    return scaled(train, low, span), scaled(test, low, span), 2
