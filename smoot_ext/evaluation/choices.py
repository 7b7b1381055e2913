"""Validation of the options that name things (methods, orders) or count them: one error
wording for all (the option, what was expected, what came)."""
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


def check_count(option: str, value, least: int = 1) -> None:
    """An integer >= ``least`` (a bool is not one)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ValueError(f"{option}: expected an integer >= {least}, got {value!r}")
