"""A calibrated policy overlay: a small TOML of moved values applied on top of the locked policy.

The overlay names each value by its dotted policy key (`classify.small_below`,
`cases.single_complex.union_strength`), says what it was and why it moved, and carries its
provenance (the policy version it was made for, how many runs, their date range, held-out scores).

    result = load_with_overlay(overlay_path)      # never raises for a bad overlay
    result.policy, result.applied, result.note    # the locked policy when the overlay is refused

Rules: an overlay made for another policy version is refused with the reason; a hard key (the
hard rules, the global CFG range, the limits, the model, the node map, prompts) is never moved; a key
the policy's [tunable] table does not list is never moved, nor moved outside the range listed there;
every value keeps the shape of the policy value it replaces; the result is re-validated by
parse_policy, so an overlay can never produce a policy the loader would reject.
"""

from __future__ import annotations

import copy
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .data_checks import is_number
from .loader import Policy, PolicyError, parse_policy, read_policy_document

OVERLAY_FILE = "m4_policy_overlay.toml"
ENV_OVERLAY = "M4_POLICY_OVERLAY"
# Dotted prefixes no overlay may touch: the locked half of the policy (seed 004 section 2).
HARD_PREFIXES = ("version", "model", "nodes", "template", "tunable", "limits", "hard_rules", "cfg.global_min",
                 "cfg.global_max", "prompts", "raw_drivers", "signals", "sanitise")
_PROVENANCE_KEYS = {"policy_version", "created_at", "run_count", "first_run", "last_run", "tool", "heldout",
                    "outcome_source", "off_policy"}


class OverlayError(PolicyError):
    """The overlay file is unreadable, made for another policy, or moves a key it may not."""


@dataclass(frozen=True)
class MovedValue:
    key: str
    value: float | list[float]
    was: float | list[float]
    reason: str


@dataclass(frozen=True)
class Overlay:
    policy_version: str
    provenance: Mapping[str, Any]
    moved: tuple[MovedValue, ...]
    source: str = "<dict>"


@dataclass(frozen=True)
class OverlayResult:
    """What load_with_overlay did: the policy to use, whether the overlay was applied and why not."""

    policy: Policy
    applied: bool
    note: str
    overlay: Overlay | None = None
    path: str | None = None

    def diagnostics(self) -> dict[str, Any]:
        """The plan-diagnostics entry: which overlay is in force (or why none is)."""
        out: dict[str, Any] = {"applied": self.applied, "path": self.path, "note": self.note}
        if self.overlay is not None and self.applied:
            out["moved"] = {m.key: m.value for m in self.overlay.moved}
            out["run_count"] = self.overlay.provenance.get("run_count")
        return out


def is_hard_key(key: str) -> bool:
    return any(key == p or key.startswith(p + ".") for p in HARD_PREFIXES)


def _lookup(raw: Mapping[str, Any], key: str) -> Any:
    node: Any = raw
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise OverlayError(f"overlay key {key}: not a key of the policy")
        node = node[part]
    return node


def _check_shape(key: str, value: Any, current: Any, what: str) -> float | list[float]:
    if isinstance(current, list):
        if not (isinstance(value, list) and len(value) == len(current) and all(is_number(v) for v in value)):
            raise OverlayError(f"overlay key {key}: {what} must be [lower, upper] numbers like the policy's "
                               f"{current!r}, got {value!r}")
        if all(isinstance(c, int) and not isinstance(c, bool) for c in current):
            if not all(float(v).is_integer() for v in value):
                raise OverlayError(f"overlay key {key}: {what} must be integers, got {value!r}")
            return [int(v) for v in value]
        return [float(v) for v in value]
    if not is_number(current):
        raise OverlayError(f"overlay key {key}: not a numeric policy value")
    if not is_number(value):
        raise OverlayError(f"overlay key {key}: {what} must be a finite number, got {value!r}")
    return float(value)


def _parse_moved(entry: Any, i: int, policy_raw: Mapping[str, Any], seen: set[str]) -> MovedValue:
    if not isinstance(entry, Mapping):
        raise OverlayError(f"overlay key moved[{i}]: expected a table, got {entry!r}")
    unknown = sorted(set(entry) - {"key", "value", "was", "reason"})
    if unknown:
        raise OverlayError(f"overlay key moved[{i}].{unknown[0]}: unknown key")
    key = entry.get("key")
    if not isinstance(key, str) or not key:
        raise OverlayError(f"overlay key moved[{i}].key: expected a dotted policy key, got {key!r}")
    if is_hard_key(key):
        raise OverlayError(f"overlay key {key}: a hard rule or locked value; calibration never moves it")
    if key in seen:
        raise OverlayError(f"overlay key {key}: moved twice")
    current = _lookup(policy_raw, key)
    marks = policy_raw.get("tunable")
    if isinstance(marks, Mapping) and key not in marks:
        raise OverlayError(f"overlay key {key}: not marked tunable in the policy's [tunable] table; never moved")
    value = _check_shape(key, entry.get("value"), current, "value")
    if isinstance(marks, Mapping) and isinstance(marks.get(key), list) and len(marks[key]) == 2:
        lo, hi = (float(x) for x in marks[key])
        if not all(lo - 1e-9 <= v <= hi + 1e-9 for v in (value if isinstance(value, list) else [value])):
            raise OverlayError(f"overlay key {key}: {value!r} leaves the tunable range [{lo:g}, {hi:g}]")
    was = _check_shape(key, entry.get("was", current), current, "was")
    reason = entry.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        raise OverlayError(f"overlay key {key}: every moved value needs a non-empty reason")
    seen.add(key)
    return MovedValue(key=key, value=value, was=was, reason=reason)


def parse_overlay(raw: Mapping[str, Any], policy_raw: Mapping[str, Any], source: str = "<dict>") -> Overlay:
    """Validate an overlay document against the raw policy it is for. Raises OverlayError naming the key."""
    if not isinstance(raw, Mapping):
        raise OverlayError("overlay: expected a table at the top level")
    unknown = sorted(set(raw) - {"provenance", "moved"})
    if unknown:
        raise OverlayError(f"overlay key {unknown[0]}: unknown key (expected provenance, moved)")
    prov = raw.get("provenance")
    if not isinstance(prov, Mapping):
        raise OverlayError("overlay key provenance: missing (policy_version, run count, dates, held-out scores)")
    bad = sorted(set(prov) - _PROVENANCE_KEYS)
    if bad:
        raise OverlayError(f"overlay key provenance.{bad[0]}: unknown key")
    version = prov.get("policy_version")
    if not isinstance(version, str):
        raise OverlayError("overlay key provenance.policy_version: missing")
    if version != policy_raw.get("version"):
        raise OverlayError(f"overlay key provenance.policy_version: made for policy {version!r}, but the locked "
                           f"policy is {policy_raw.get('version')!r}; refused (calibrate again on this policy)")
    moved_raw = raw.get("moved", [])
    if not isinstance(moved_raw, list):
        raise OverlayError("overlay key moved: expected an array of tables")
    seen: set[str] = set()
    moved = tuple(_parse_moved(e, i, policy_raw, seen) for i, e in enumerate(moved_raw))
    return Overlay(policy_version=version, provenance=dict(prov), moved=moved, source=source)


def apply_overlay(policy_raw: Mapping[str, Any], overlay: Overlay) -> dict[str, Any]:
    """A fresh raw policy dict with the overlay's values set (not yet validated: see overlay_policy)."""
    out = copy.deepcopy(dict(policy_raw))
    for m in overlay.moved:
        *parents, leaf = m.key.split(".")
        node = out
        for part in parents:
            node = node[part]
        node[leaf] = copy.deepcopy(m.value)
    return out


def overlay_policy(policy_raw: Mapping[str, Any], overlay: Overlay, source: str = "<dict>") -> Policy:
    """apply_overlay, then the loader's full validation (an error names the key and the overlay)."""
    try:
        return parse_policy(apply_overlay(policy_raw, overlay), source=source)
    except OverlayError:
        raise
    except PolicyError as exc:
        raise OverlayError(f"overlay {overlay.source}: the overlaid policy is invalid: {exc}") from None


def read_overlay(path: str | Path, policy_raw: Mapping[str, Any]) -> Overlay:
    p = Path(path)
    try:
        with p.open("rb") as fh:
            raw = tomllib.load(fh)
    except FileNotFoundError:
        raise OverlayError(f"overlay file {p}: not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise OverlayError(f"overlay file {p}: not valid TOML ({exc})") from None
    return parse_overlay(raw, policy_raw, source=str(p))


def default_overlay_path(comfy_user_dir: Path | None = None, beside: Path | None = None) -> Path:
    """$M4_POLICY_OVERLAY, else <ComfyUI user>/m4_director/, else beside the given run log."""
    env = os.environ.get(ENV_OVERLAY)
    if env:
        return Path(env)
    if comfy_user_dir is not None:
        return Path(comfy_user_dir) / "m4_director" / OVERLAY_FILE
    return (Path(beside).parent if beside is not None else Path.cwd()) / OVERLAY_FILE


def load_with_overlay(overlay_path: str | Path | None, policy_path: str | Path | None = None) -> OverlayResult:
    """The locked policy with the overlay applied when it is valid; an absent or invalid overlay leaves
    the locked policy in force (the note says why). A bad locked policy still raises PolicyError."""
    policy_raw, p = read_policy_document(policy_path)
    locked = parse_policy(policy_raw, source=str(p))
    if overlay_path is None:
        return OverlayResult(locked, False, "no overlay given: the locked policy")
    op = Path(overlay_path)
    if not op.is_file():
        return OverlayResult(locked, False, f"no overlay at {op}: the locked policy", path=str(op))
    try:
        overlay = read_overlay(op, policy_raw)
        policy = overlay_policy(policy_raw, overlay, source=f"{p} + overlay {op}")
    except OverlayError as exc:
        return OverlayResult(locked, False, f"overlay ignored, the locked policy is used: {exc}", path=str(op))
    n = len(overlay.moved)
    return OverlayResult(policy, True, f"calibrated overlay applied ({n} value(s) moved)", overlay, str(op))


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(float(v)) if isinstance(v, float) else str(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ") + '"'
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, Mapping):
        return "{ " + ", ".join(f"{k} = {_toml_value(x)}" for k, x in v.items()) + " }"
    raise OverlayError(f"overlay: cannot write {v!r} as TOML")


def dump_overlay(provenance: Mapping[str, Any], moved: list[MovedValue]) -> str:
    """The overlay as TOML text (read back by read_overlay)."""
    lines = ["# M4 calibrated policy overlay, written by `./m4 calibrate`. Applied on top of the locked policy;",
             "# delete this file (or pass --no-overlay) to plan with the locked policy alone.", "", "[provenance]"]
    lines += [f"{k} = {_toml_value(v)}" for k, v in provenance.items() if not isinstance(v, Mapping)]
    for k, v in provenance.items():
        if isinstance(v, Mapping):
            lines += ["", f"[provenance.{k}]"] + [f"{kk} = {_toml_value(vv)}" for kk, vv in v.items()]
    for m in moved:
        lines += ["", "[[moved]]", f"key = {_toml_value(m.key)}", f"value = {_toml_value(m.value)}",
                  f"was = {_toml_value(m.was)}", f"reason = {_toml_value(m.reason)}"]
    return "\n".join(lines) + "\n"


__all__ = ["ENV_OVERLAY", "HARD_PREFIXES", "OVERLAY_FILE", "MovedValue", "Overlay", "OverlayError",
           "OverlayResult", "apply_overlay", "default_overlay_path", "dump_overlay", "is_hard_key",
           "load_with_overlay", "overlay_policy", "parse_overlay", "read_overlay"]
