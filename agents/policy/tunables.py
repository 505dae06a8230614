"""Which policy keys are tunable (calibration may move them, inside a declared range) and which are locked.

The policy's [tunable] table lists dotted keys with [lower, upper]; everything else is locked, and the
hard rules may never be listed. Validation here is what keeps calibration from crossing a hard rule:
a range must lie inside the key's own schema range and inside the hard rule that caps it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .data_checks import is_number

# Sections whose every key is a hard rule or structure: never tunable.
LOCKED_SECTIONS = ("hard_rules", "limits", "nodes", "template", "tunable", "version", "model", "sanitise")
HARD_KEYS = ("cfg.global_min", "cfg.global_max")


class TunableError(ValueError):
    """A [tunable] entry that names a locked key, a key that does not exist, or a range that crosses a rule."""


def lookup(raw: Mapping[str, Any], dotted: str) -> Any:
    """The value at a dotted key of the raw policy document (KeyError when absent)."""
    node: Any = raw
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise KeyError(dotted)
        node = node[part]
    return node


def _hard_cap(dotted: str, raw: Mapping[str, Any]) -> tuple[float, float] | None:
    """The hard rule's own limit on a case bound, if one applies to it."""
    parts = dotted.split(".")
    if parts[0] != "cases" or len(parts) != 3:
        return None
    hard, cfg = raw["hard_rules"], raw["cfg"]
    return {"cfg1": (cfg["global_min"], cfg["global_max"]), "cfg2": (cfg["global_min"], cfg["global_max"]),
            "denoise2": (0.0, hard["denoise2_max"]), "ip2_weight": (0.0, hard["ip2_abs_max"])}.get(parts[2])


def parse_tunables(raw: Mapping[str, Any], ranges: Mapping[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
    """Validate [tunable] against the raw policy; `ranges` gives each tunable key's schema range."""
    table = raw.get("tunable")
    if not isinstance(table, Mapping):
        raise TunableError(f"policy key tunable: expected a table of dotted keys, got {table!r}")
    out: dict[str, tuple[float, float]] = {}
    for dotted, bounds in table.items():
        path = f"tunable.{dotted}"
        if dotted.split(".")[0] in LOCKED_SECTIONS or dotted in HARD_KEYS:
            raise TunableError(f"policy key {path}: {dotted} is a hard rule or structure and can never be tunable")
        try:
            current = lookup(raw, dotted)
        except KeyError:
            raise TunableError(f"policy key {path}: no such policy key {dotted!r}") from None
        if dotted not in ranges:
            raise TunableError(f"policy key {path}: {dotted} is not a number or a bound calibration can move")
        ok = (isinstance(bounds, list) and len(bounds) == 2
              and all(is_number(v) for v in bounds))
        if not ok or bounds[0] > bounds[1]:
            raise TunableError(f"policy key {path}: expected [lower, upper] numbers, got {bounds!r}")
        lo, hi = float(bounds[0]), float(bounds[1])
        s_lo, s_hi = ranges[dotted]
        cap = _hard_cap(dotted, raw) or (s_lo, s_hi)
        if lo < max(s_lo, cap[0]) - 1e-9 or hi > min(s_hi, cap[1]) + 1e-9:
            raise TunableError(f"policy key {path}: [{lo:g}, {hi:g}] leaves the range the schema and the hard "
                               f"rules allow, [{max(s_lo, cap[0]):g}, {min(s_hi, cap[1]):g}]")
        values = current if isinstance(current, list) else [current]
        if any(not lo - 1e-9 <= float(v) <= hi + 1e-9 for v in values):
            raise TunableError(f"policy key {path}: the current value {current!r} lies outside [{lo:g}, {hi:g}]")
        out[dotted] = (lo, hi)
    return out
