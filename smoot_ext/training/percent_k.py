"""SMOOT's K read as the paper names it, a masking percentage (``GuidedConfig(k_update="percent")``).

Each sample's K is kept as a real number of units, ``K_pct / 100 * units``, and stepped by
``units / 100 * mu * delta`` without rounding (Algorithm 2, line 6, with K and its bounds in
percent), then clamped to ``[k_min, k_max] * units``. The mask takes the nearest whole count
(``torch.round``, half to even): unlike a floor it adds no drift of its own, so small steps of
either sign add up as they are. A NaN delta takes the lowest K, as the op's step does.

It lives in the trainer, on top of the op's delta (``smoot_ext.update_k``'s second output): the
op's contract is an integer k, the same on every backend; this step is one elementwise line.
"""
from __future__ import annotations

import torch


class PercentK:
    """The real-valued K of every training sample; ``units`` the units each sample's K counts
    (M, or a padded sequence's own), float64."""

    def __init__(self, units: torch.Tensor, k_init: float, k_min: float, k_max: float):
        self.units = units.double()
        self.value = k_init * self.units
        self.low, self.high = k_min * self.units, k_max * self.units

    def step(self, index: torch.Tensor, delta: torch.Tensor, mu: float) -> torch.Tensor:
        """Moves the K of samples ``index`` by ``delta``; returns their new mask counts."""
        v = self.value[index] + self.units[index] / 100 * mu * delta.double()
        v = torch.nan_to_num(v, nan=-torch.inf).clamp(self.low[index], self.high[index])
        self.value[index] = v
        return counts(v)

    def to(self, device) -> PercentK:
        for name in ("units", "value", "low", "high"):
            setattr(self, name, getattr(self, name).to(device))
        return self


def counts(value: torch.Tensor) -> torch.Tensor:
    """The mask count of a real-valued K: the nearest whole number of units."""
    return value.round().long()
