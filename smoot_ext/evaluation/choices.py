"""Validation of the options that name things (methods, orders): one error wording for all."""
from __future__ import annotations

from collections.abc import Iterable, Sequence


def check_choices(values: Iterable[str], choices: Sequence[str], option: str, noun: str) -> list[str]:
    """At least one value, each among ``choices`` and given once; raises naming the option, the
    bad value and the valid choices."""
    values = list(values)
    if not values:
        raise ValueError(f"{option}: expected at least one of {', '.join(choices)}, got none")
    for v in values:
        if v not in choices:
            raise ValueError(f"{option}: unknown {noun} {v!r}; choose from {', '.join(choices)}")
    if len(set(values)) != len(values):
        raise ValueError(f"{option}: each {noun} at most once, got {values}")
    return values
