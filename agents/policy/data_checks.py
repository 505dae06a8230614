"""The one definition of "a number in its range" and "only known keys" for every data loader.

Each family's loader (policy, measure, guidance, in-betweening, patterns, calibration) keeps its own error class
and key prefix ("policy key a.b: ..."); these return the part after the prefix, or None when the value
is fine, so the wording of a bad value is the same in every file.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any


def is_number(v: Any) -> bool:
    """A finite int or float (True/False are not numbers here, though Python says they are ints)."""
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def number_problem(v: Any, lo: float, hi: float, *, integer: bool = False, whole_floats: bool = False,
                   open_lo: bool = False) -> str | None:
    """None when v is a number in [lo, hi] (or (lo, hi] with open_lo), else "expected ... got v".

    integer: v must be a TOML integer; whole_floats also accepts 3.0 for an integer key."""
    ok = is_number(v)
    if ok and integer:
        ok = isinstance(v, int) or (whole_floats and float(v).is_integer())
    if ok:
        ok = (lo < v if open_lo else lo <= v) and v <= hi
    if ok:
        return None
    kind = "an integer" if integer else "a number"
    return f"expected {kind} in {'(' if open_lo else '['}{lo:g}, {hi:g}], got {v!r}"


def unknown_problem(data: Mapping[str, Any], known: Iterable[str]) -> tuple[str, str] | None:
    """(the first key of data, sorted, that known does not list, "unknown key (expected one of [...])"),
    or None."""
    names = sorted(set(known))
    extra = sorted(set(data) - set(names))
    return (extra[0], f"unknown key (expected one of {names})") if extra else None
