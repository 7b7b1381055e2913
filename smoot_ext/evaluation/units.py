"""What the evaluation removes: a unit of the input, and how its score and its removal map onto
the input's layout. Adding a unit is one entry of ``REMOVAL_UNITS``.

Sequences ((B, T, D): a series, or token embeddings) may be padded: ``real`` gives each sample's
own units from its length, so the evaluation's levels are fractions of those and padding is
never ranked, removed or scored."""
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

    def real(self, lengths: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor | None:
        """(B, M) True at each sample's real units (its first ``lengths[b]`` steps), None
        without lengths (every unit real)."""
        if lengths is None:
            return None
        if x.dim() != 3:
            raise ValueError(f"lengths: expected (B, T, D) input, got x of shape {tuple(x.shape)}")
        B, T, D = x.shape
        steps = torch.arange(T, device=x.device) < lengths.to(x.device).unsqueeze(1)  # (B, T)
        return steps if self.channels is not None else steps.unsqueeze(2).expand(B, T, D).reshape(B, -1)

    def region(self, truth: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The ground truth as one flag per unit of this map: a truth given per value of x (a
        series' box, (B, T, D)) marks a unit holding any true value; one given per map unit
        (an image's (B, H, W), a text's (B, T)) is taken as it is."""
        if self.channels is not None and tuple(truth.shape[1:]) == tuple(x.shape[1:]):
            truth = truth.any(dim=self.channels)
        return truth.reshape(truth.shape[0], -1)

    def spread(self, removed: torch.Tensor) -> torch.Tensor:
        """smoot_ext.mask's removed mask, broadcastable to the input's values."""
        return removed if self.channels is None else removed.unsqueeze(self.channels)


REMOVAL_UNITS = {u.name: u for u in (
    Unit("pixel", "pixel", 1, 4, "NCHW"),  # all channels of a position together
    Unit("feature", "feature", None, None, "any"),  # single values
    # Sequences (B, T, D): a whole time step or token (its D values), or one value of a series.
    Unit("step", "pixel", 2, 3, "(B, T, D)", maps="step"),
    Unit("element", "feature", None, 3, "(B, T, D)", maps="element"),
)}
SEQUENCE_UNITS = {"pixel": "step", "feature": "element"}  # the evaluation's unit for a training unit


def check_unit(unit: str, option: str = "unit") -> Unit:
    if unit not in REMOVAL_UNITS:
        raise ValueError(f"{option}: expected one of {', '.join(map(repr, REMOVAL_UNITS))}, got {unit!r}")
    return REMOVAL_UNITS[unit]


def unit_scores(attribution: torch.Tensor, *, unit: str = "pixel", abs: bool = True) -> torch.Tensor:
    """(B, M) importance of each removable unit of ``attribution`` (see ``Unit.scores``)."""
    return check_unit(unit, "unit").scores(attribution, abs)
