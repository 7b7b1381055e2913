"""What the evaluation removes: a unit of the input, and how its score and its removal map onto
the input's layout. Adding a unit (e.g. a token of a (B, T, D) sequence: ``Unit("token", "pixel",
2, 3, "(B, T, D)", maps="token")``) is one entry of ``UNITS``."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..ops import num_units


@dataclass(frozen=True)
class Unit:
    """``name``: the evaluation's name of the unit; ``op_unit``: the unit of ``smoot_ext.mask``
    that removes it; ``channels``: the dimension holding one unit's values (None: every value is
    a unit); ``dims``: the number of dimensions the input must have (None: any), named
    ``layout`` in errors; ``maps``: the unit the saliency-map grid and ground-truth regions are
    per (an image's pixels, whatever is removed)."""

    name: str
    op_unit: str
    channels: int | None
    dims: int | None
    layout: str
    maps: str = "pixel"

    def check(self, t: torch.Tensor, what: str) -> None:
        if self.dims is not None and t.dim() != self.dims:
            raise ValueError(f"{what}: expected a {self.layout} tensor for unit={self.name!r}, "
                             f"got shape {tuple(t.shape)}")

    def count(self, x: torch.Tensor) -> int:
        """M, the units per input."""
        return num_units(x, self.op_unit)

    def scores(self, attribution: torch.Tensor, abs: bool) -> torch.Tensor:
        """(B, M): |attribution| (or signed) summed over each unit's values, as smoot_ext.mask ranks."""
        self.check(attribution, "attribution")
        a = attribution.float()
        if abs:
            a = a.abs()
        if self.channels is not None:
            a = a.sum(dim=self.channels)
        return a.reshape(a.shape[0], -1)

    def score_shape(self, x: torch.Tensor) -> tuple[int, ...]:
        """The shape smoot_ext.mask takes one score per unit of x in."""
        if self.channels is None:
            return tuple(x.shape)
        return tuple(1 if d == self.channels else n for d, n in enumerate(x.shape))

    def map_shape(self, x: torch.Tensor) -> tuple[int, ...]:
        """One input's units as a map (NCHW pixels: (H, W))."""
        return tuple(n for d, n in enumerate(x.shape) if d not in (0, self.channels))

    def spread(self, removed: torch.Tensor) -> torch.Tensor:
        """smoot_ext.mask's removed mask, broadcastable to the input's values."""
        return removed if self.channels is None else removed.unsqueeze(self.channels)


UNITS = {u.name: u for u in (
    Unit("pixel", "pixel", 1, 4, "NCHW"),  # all channels of a position together
    Unit("feature", "feature", None, None, "any"),  # single values
)}


def check_unit(unit: str, option: str = "--unit") -> Unit:
    if unit not in UNITS:
        raise ValueError(f"{option}: expected one of {', '.join(map(repr, UNITS))}, got {unit!r}")
    return UNITS[unit]


def unit_scores(attribution: torch.Tensor, *, unit: str = "pixel", abs: bool = True) -> torch.Tensor:
    """(B, M) importance of each removable unit of ``attribution`` (see ``Unit.scores``)."""
    return check_unit(unit, "unit").scores(attribution, abs)
