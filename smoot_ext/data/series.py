"""The time-series benchmark of Ismail et al. 2020 ("Benchmarking Deep Learning Interpretability
in Time Series Predictions", NeurIPS 2020; its generator is TS-Interpretability-Benchmark),
generated in process: its "Box" background, 50 time steps x 50 features.

Every value is N(0, 1) noise; inside one box of time steps x features the values are
N(target, 1) instead, with target -1 (label 0) or +1 (label 1), so only the box says the class.
The variants place the box (steps x features, first step, first feature; their settings):

- ``ts-middle``: 30 x 30 from (10, 10); ``ts-small-middle``: 14 x 14 from (18, 18);
- ``ts-rare-time``: 6 x 40 from (22, 5) (few steps); ``ts-rare-feature``: 40 x 6 from (5, 22);
- ``ts-moving-*``: the same box sizes at a random place per sample (first step uniform in
  [0, T - steps), first feature in [0, F - features), as their generator draws them).

The box is the ground truth: ``masks`` is (N, T, F) bool, True inside it.
"""
from __future__ import annotations

import torch

from .samples import IndexedSamples

STEPS, FEATURES = 50, 50
SERIES_SEED = 0  # one fixed set, as for the synthetic images: --seed chooses subsets only
# name: (box steps, box features, first step, first feature); None: drawn per sample (moving)
SERIES = {
    "ts-middle": (30, 30, 10, 10),
    "ts-small-middle": (14, 14, 18, 18),
    "ts-moving-middle": (30, 30, None, None),
    "ts-rare-time": (6, 40, 22, 5),
    "ts-moving-rare-time": (6, 40, None, None),
    "ts-rare-feature": (40, 6, 5, 22),
    "ts-moving-rare-feature": (40, 6, None, None),
}
SERIES_DATASETS = tuple(SERIES)


def _starts(fixed: int | None, span: int, total: int, n: int, g: torch.Generator) -> torch.Tensor:
    if fixed is not None:
        return torch.full((n,), fixed)
    return torch.randint(0, total - span, (n,), generator=g)


def make_series(name: str, n: int, g: torch.Generator, steps: int = STEPS,
                features: int = FEATURES) -> IndexedSamples:
    """``n`` samples of variant ``name`` drawn from ``g``: (N, T, F) float, labels, box masks."""
    box_t, box_f, t0, f0 = SERIES[name]
    y = torch.randint(0, 2, (n,), generator=g)
    t0, f0 = _starts(t0, box_t, steps, n, g), _starts(f0, box_f, features, n, g)
    in_t = (torch.arange(steps) >= t0[:, None]) & (torch.arange(steps) < t0[:, None] + box_t)
    in_f = (torch.arange(features) >= f0[:, None]) & (torch.arange(features) < f0[:, None] + box_f)
    box = in_t[:, :, None] & in_f[:, None, :]
    target = (2 * y - 1).float().view(n, 1, 1)
    x = torch.randn(n, steps, features, generator=g) + target * box
    return IndexedSamples(x, y, box)


def load_series(name: str, n_train: int = 1000, n_test: int = 500):
    """(train, test, classes) of variant ``name`` (their script's 1000 training samples)."""
    g = torch.Generator().manual_seed(SERIES_SEED)
    return make_series(name, n_train, g), make_series(name, n_test, g), 2
