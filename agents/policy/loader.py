"""Load and validate the M4 policy (agents/m4_policy.toml).

Validation is schema-driven so every error names the exact key, e.g.
"policy key cases.single_simple.cfg1_eff_max: expected a number in [7, 10], got 'x'".
Unknown keys fail too: a misspelt key would otherwise silently fall back to nothing.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

from .data_checks import number_problem, unknown_problem
from .template_contract import ContractError, TemplateContract, parse_template_contract
from .tunables import TunableError, parse_tunables

DEFAULT_POLICY_PATH = Path(__file__).with_name("m4_policy.toml")

CASES = ("single_simple", "single_complex", "multi_object")
REFERENCE_MODES = ("off", "guarded", "style", "identity")
SIGNAL_NAMES = ("S", "R", "D", "P", "intent", "influence")
DRIVERS = SIGNAL_NAMES + tuple(f"inv_{s}" for s in SIGNAL_NAMES)
PROMPT_FIELDS = ("ks1_positive", "ks1_negative", "ks2_positive", "ks2_negative")

# Every dynamic value, the [limits] family it belongs to, and whether it is an integer.
VALUE_KINDS: dict[str, tuple[str, bool]] = {
    "cfg1": ("cfg", False), "cfg2": ("cfg", False),
    "denoise1": ("denoise", False), "denoise2": ("denoise", False),
    "steps1": ("steps", True), "steps2": ("steps", True),
    "union_strength": ("strength", False), "union_end": ("end", False),
    "pose_strength": ("strength", False), "pose_end": ("end", False),
    "ip1_weight": ("ip_weight", False), "ip1_end_at": ("end", False),
    "ip2_weight": ("ip_weight", False), "ip2_end_at": ("end", False),
}
VALUE_NAMES = tuple(VALUE_KINDS)

_UNIT = (0.0, 1.0)
_SMALL = (0.0, 0.5)  # modifier amounts: a modifier moving a bound by more than half its range is a typo

_SCHEMA: dict[str, dict[str, tuple[float, float]]] = {
    "cfg": {"global_min": (1.0, 30.0), "global_max": (1.0, 30.0), "base_offset": (1.0, 30.0),
            "base_span": (0.0, 10.0), "cfg2_floor_drop": (0.0, 3.0)},
    "intent": {"offset": _UNIT, "s_weight": _UNIT, "r_weight": _UNIT},
    "classify": {"multi_object_min_count": (2.0, 100.0), "complex_threshold": _UNIT,
                 "construction_threshold": _UNIT, "small_below": _UNIT, "large_above": _UNIT},
    "modifiers": {
        "conflict_high": _UNIT, "conflict_ip1_max_drop": _SMALL, "conflict_ip2_max_drop": _SMALL,
        "conflict_ip2_end_drop": _SMALL, "colored_ip2_max_drop": _SMALL, "colored_ip2_end_shift": _SMALL,
        "low_lq_below": _UNIT, "low_lq_denoise1_raise": _SMALL, "low_lq_ip1_raise": _SMALL,
        "high_lq_above": _UNIT, "high_lq_denoise2_drop": _SMALL, "high_lq_ip2_drop": _SMALL,
        "high_p_above": _UNIT, "high_p_pose_raise": _SMALL, "high_p_ip2_drop": _SMALL,
        "large_union_max_drop": _SMALL, "small_union_max_raise": _SMALL,
    },
    "signals": {k: _UNIT for k in ("s_construction", "s_broken", "s_line_quality",
                                   "h_cfg2", "h_denoise2", "h_ip2", "h_conflict")},
    "reference_modes": {k: _UNIT for k in ("off_below", "guarded_conflict", "identity_min_r",
                                           "identity_max_conflict", "style_max_conflict", "factor_off",
                                           "factor_guarded", "factor_style", "factor_identity")},
    "hard_rules": {"ip_gap": _SMALL, "ip2_abs_max": _UNIT, "denoise2_max": _UNIT, "ip2_cap1_above": _UNIT,
                   "ip2_cap1_cfg2": (1.0, 30.0), "ip2_cap2_above": _UNIT, "ip2_cap2_cfg2": (1.0, 30.0),
                   "union_couple_above": (0.0, 1.5), "pose_couple_above": (0.0, 1.5),
                   "couple_cfg1_drop": (0.0, 3.0), "h_damp_above": _UNIT, "h_damp_cfg1": (0.0, 3.0),
                   "h_damp_cfg2": (0.0, 3.0)},
    "sanitise": {k: _UNIT for k in ("line_quality_score", "construction_lines", "broken_lines",
                                    "complexity_score", "subject_scale", "anatomy_risk_score", "similarity",
                                    "conflict_penalty", "style_distance", "accessory_conflict",
                                    "intent_strength")},
    "line_quality": {"max_broken": _UNIT, "max_dotted": _UNIT, "max_fringe": _UNIT, "max_jitter": _UNIT,
                     "max_stray": _UNIT, "retry_cfg2_step": (1e-6, 3.0), "retry_ip2_step": (1e-6, 0.5),
                     "retry_denoise2_step": (1e-6, 0.5)},
}
_LIMIT_RANGES = {"cfg": (1.0, 30.0), "denoise": _UNIT, "steps": (1.0, 200.0), "strength": (0.0, 10.0),
                 "end": _UNIT, "ip_weight": (0.0, 5.0)}
_PROMPT_LISTS = ("quality", "base_negative", "ks1_structure", "ks1_negative", "ks1_pose_guard",
                 "ks1_pose_guard_negative", "ks1_multi_negative", "ks2_cleanup", "ks2_negative",
                 "ks2_strong_negative", "ks2_colored_negative", "ks2_style", "ks2_only", "style_modes")
_PROMPT_NUMBERS = {"pose_guard_p": _UNIT, "strong_negative_h": _UNIT, "style_max_conflict": _UNIT}
_KS1_LISTS = ("ks1_structure", "ks1_negative", "ks1_pose_guard", "ks1_pose_guard_negative", "ks1_multi_negative")
_TOP_LEVEL = {"version", "model", "nodes", "template", "cases", "limits", "raw_drivers", "prompts", "tunable",
              *_SCHEMA}


class PolicyError(ValueError):
    """The policy file is missing a key, has a wrong type or an impossible value."""


def _fmt(x: float) -> str:
    return f"{x:g}"


def _number(data: Mapping[str, Any], key: str, path: str, lo: float, hi: float) -> float:
    if key not in data:
        raise PolicyError(f"policy key {path}: missing")
    problem = number_problem(data[key], lo, hi)
    if problem:
        raise PolicyError(f"policy key {path}: {problem}")
    return float(data[key])


def _table(data: Mapping[str, Any], key: str, path: str) -> Mapping[str, Any]:
    if key not in data:
        raise PolicyError(f"policy key {path}: missing")
    value = data[key]
    if not isinstance(value, dict):
        raise PolicyError(f"policy key {path}: expected a table, got {value!r}")
    return value


def _no_unknown(data: Mapping[str, Any], known: set[str] | tuple[str, ...], path: str) -> None:
    bad = unknown_problem(data, known)
    if bad:
        where = f"{path}." if path else ""
        raise PolicyError(f"policy key {where}{bad[0]}: {bad[1]}")


def _string(data: Mapping[str, Any], key: str, path: str) -> str:
    if key not in data:
        raise PolicyError(f"policy key {path}: missing")
    value = data[key]
    if not isinstance(value, str) or not value.strip():
        raise PolicyError(f"policy key {path}: expected a non-empty string, got {value!r}")
    return value


def _bounds(data: Mapping[str, Any], key: str, path: str, lo: float, hi: float, integer: bool) -> tuple[float, float]:
    if key not in data:
        raise PolicyError(f"policy key {path}: missing")
    value = data[key]
    kind = "integers" if integer else "numbers"
    if not (isinstance(value, list) and len(value) == 2):
        raise PolicyError(f"policy key {path}: expected [lower, upper] {kind} in [{_fmt(lo)}, {_fmt(hi)}], "
                          f"got {value!r}")
    for v in value:
        if number_problem(v, lo, hi, integer=integer):
            raise PolicyError(f"policy key {path}: expected [lower, upper] {kind} in [{_fmt(lo)}, {_fmt(hi)}], "
                              f"got {value!r}")
    if value[0] > value[1]:
        raise PolicyError(f"policy key {path}: lower bound {value[0]} is above upper bound {value[1]}")
    return float(value[0]), float(value[1])


@dataclass(frozen=True)
class NodeDriver:
    """One template node the plan drives: API node id, class_type and {node input: plan field}."""

    node_id: str
    role: str
    class_type: str
    drives: Mapping[str, str]


@dataclass(frozen=True)
class CaseProfile:
    name: str
    cfg1_eff_max: float
    cfg2_eff_max: float
    pose_lock_bias: float
    bounds: Mapping[str, tuple[float, float]]


@dataclass(frozen=True)
class Policy:
    """The validated policy. Sections are read-only mappings of plain numbers/strings."""

    version: str
    checkpoint: str
    template: str
    nodes: Mapping[str, NodeDriver]
    template_contract: TemplateContract
    cfg: Mapping[str, float]
    intent: Mapping[str, float]
    classify: Mapping[str, float]
    cases: Mapping[str, CaseProfile]
    limits: Mapping[str, tuple[float, float]]
    modifiers: Mapping[str, float]
    signals: Mapping[str, float]
    reference_modes: Mapping[str, float]
    raw_drivers: Mapping[str, str]
    hard_rules: Mapping[str, float]
    sanitise: Mapping[str, float]
    line_quality: Mapping[str, float]
    prompts: Mapping[str, Any]
    tunables: Mapping[str, tuple[float, float]]  # dotted key -> the range calibration may move it in
    source: str

    def value_limits(self, name: str) -> tuple[float, float]:
        """The outer [limits] range of one dynamic value."""
        return self.limits[VALUE_KINDS[name][0]]


def _check_weights(section: Mapping[str, float], keys: tuple[str, ...], path: str) -> None:
    total = sum(section[k] for k in keys)
    if abs(total - 1.0) > 1e-6:
        raise PolicyError(f"policy key {path}.{keys[0]}: the weights {', '.join(keys)} must sum to 1, got {total:g}")


def _parse_nodes(raw: Mapping[str, Any]) -> dict[str, NodeDriver]:
    nodes_raw = _table(raw, "nodes", "nodes")
    known_fields = set(VALUE_NAMES) | set(PROMPT_FIELDS)
    nodes: dict[str, NodeDriver] = {}
    driven: dict[str, str] = {}
    for node_id, entry in nodes_raw.items():
        path = f"nodes.{node_id}"
        if not isinstance(entry, dict):
            raise PolicyError(f"policy key {path}: expected a table, got {entry!r}")
        _no_unknown(entry, ("role", "class_type", "drives"), path)
        drives = _table(entry, "drives", f"{path}.drives")
        if not drives:
            raise PolicyError(f"policy key {path}.drives: expected at least one driven input")
        for input_name, field_name in drives.items():
            if field_name not in known_fields:
                raise PolicyError(f"policy key {path}.drives.{input_name}: unknown plan field {field_name!r} "
                                  f"(expected one of {sorted(known_fields)})")
            if field_name in driven:
                raise PolicyError(f"policy key {path}.drives.{input_name}: plan field {field_name!r} already "
                                  f"drives node {driven[field_name]}")
            driven[field_name] = node_id
        nodes[node_id] = NodeDriver(node_id=node_id, role=_string(entry, "role", f"{path}.role"),
                                    class_type=_string(entry, "class_type", f"{path}.class_type"),
                                    drives=MappingProxyType(dict(drives)))
    return nodes


def _parse_cases(raw: Mapping[str, Any], cfg: Mapping[str, float], limits: Mapping[str, tuple[float, float]],
                 ip_gap: float) -> dict[str, CaseProfile]:
    cases_raw = _table(raw, "cases", "cases")
    _no_unknown(cases_raw, CASES, "cases")
    g_lo, g_hi = cfg["global_min"], cfg["global_max"]
    cases: dict[str, CaseProfile] = {}
    for name in CASES:
        entry = _table(cases_raw, name, f"cases.{name}")
        path = f"cases.{name}"
        _no_unknown(entry, ("cfg1_eff_max", "cfg2_eff_max", "pose_lock_bias", *VALUE_NAMES), path)
        bounds = {}
        for value_name, (kind, integer) in VALUE_KINDS.items():
            lo, hi = limits[kind]
            bounds[value_name] = _bounds(entry, value_name, f"{path}.{value_name}", lo, hi, integer)
        ip1_lo, ip2_lo = bounds["ip1_weight"][0], bounds["ip2_weight"][0]
        if ip2_lo > ip1_lo - ip_gap + 1e-9:  # the hard rule's gap, read from [hard_rules]
            raise PolicyError(f"policy key {path}.ip2_weight: lower bound {ip2_lo:g} must be at least {ip_gap:.2f} "
                              f"under the ip1_weight lower bound {ip1_lo:g} (hard rule ip2 <= ip1 - {ip_gap:.2f})")
        for value_name in ("cfg1", "cfg2"):
            # The hard rules only lower CFG (ip2 caps, coupling, dampening) down to the global minimum: a case
            # floor above it would let a rule-made value leave the case's bounds.
            if bounds[value_name][0] != g_lo:
                raise PolicyError(f"policy key {path}.{value_name}: lower bound {bounds[value_name][0]:g} must be "
                                  f"the global CFG minimum {g_lo:g} (the hard rules may lower CFG to it)")
        cases[name] = CaseProfile(
            name=name,
            cfg1_eff_max=_number(entry, "cfg1_eff_max", f"{path}.cfg1_eff_max", g_lo, g_hi),
            cfg2_eff_max=_number(entry, "cfg2_eff_max", f"{path}.cfg2_eff_max", g_lo, g_hi),
            pose_lock_bias=_number(entry, "pose_lock_bias", f"{path}.pose_lock_bias", 0.0, 1.0),
            bounds=MappingProxyType(bounds),
        )
    return cases


def _parse_prompts(raw: Mapping[str, Any]) -> dict[str, Any]:
    section = _table(raw, "prompts", "prompts")
    _no_unknown(section, (*_PROMPT_LISTS, "conflict_pairs", *_PROMPT_NUMBERS), "prompts")
    out: dict[str, Any] = {}
    for key in _PROMPT_LISTS:
        value = section.get(key)
        if not isinstance(value, list) or not all(isinstance(t, str) and t.strip() for t in value):
            raise PolicyError(f"policy key prompts.{key}: expected a list of non-empty strings, got {value!r}")
        out[key] = tuple(value)
    pairs = section.get("conflict_pairs")
    if not isinstance(pairs, list) or not all(
        isinstance(p, list) and len(p) == 2 and all(isinstance(t, str) and t.strip() for t in p) for p in pairs
    ):
        raise PolicyError(f"policy key prompts.conflict_pairs: expected a list of [tag, tag] pairs, got {pairs!r}")
    out["conflict_pairs"] = tuple((a, b) for a, b in pairs)
    numbers: dict[str, float] = {}
    for key, (lo, hi) in _PROMPT_NUMBERS.items():
        numbers[key] = _number(section, key, f"prompts.{key}", lo, hi)
    for mode in out["style_modes"]:
        if mode not in REFERENCE_MODES:
            raise PolicyError(f"policy key prompts.style_modes: unknown reference mode {mode!r} "
                              f"(expected one of {list(REFERENCE_MODES)})")
    # The KS1 separation contract holds by construction: no KS1 list may carry a KS2-only phrase.
    ks2_only = [" ".join(p.lower().split()) for p in out["ks2_only"]]
    for key in _KS1_LISTS:
        for tag in out[key]:
            norm = " ".join(tag.lower().split())
            hit = next((p for p in ks2_only if p in norm), None)
            if hit is not None:
                raise PolicyError(f"policy key prompts.{key}: tag {tag!r} contains the KS2-only phrase {hit!r}")
    out.update(numbers)
    return out


def _parse_sections(raw: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """The numeric sections of _SCHEMA, each key in its range, and the rules that tie them together."""
    sections: dict[str, dict[str, float]] = {}
    for name, spec in _SCHEMA.items():
        table = _table(raw, name, name)
        _no_unknown(table, tuple(spec), name)
        sections[name] = {k: _number(table, k, f"{name}.{k}", lo, hi) for k, (lo, hi) in spec.items()}
    cfg = sections["cfg"]
    if cfg["global_min"] >= cfg["global_max"]:
        raise PolicyError(f"policy key cfg.global_min: {cfg['global_min']:g} must be below cfg.global_max "
                          f"{cfg['global_max']:g}")
    for key in ("ip2_cap1_cfg2", "ip2_cap2_cfg2"):
        _number(sections["hard_rules"], key, f"hard_rules.{key}", cfg["global_min"], cfg["global_max"])
    _check_weights(sections["signals"], ("s_construction", "s_broken", "s_line_quality"), "signals")
    _check_weights(sections["signals"], ("h_cfg2", "h_denoise2", "h_ip2", "h_conflict"), "signals")
    cl = sections["classify"]
    if cl["small_below"] > cl["large_above"]:
        raise PolicyError(f"policy key classify.small_below: {cl['small_below']:g} is above classify.large_above "
                          f"{cl['large_above']:g}")
    return sections


def _parse_limits(raw: Mapping[str, Any], cfg: Mapping[str, float]) -> dict[str, tuple[float, float]]:
    limits_raw = _table(raw, "limits", "limits")
    _no_unknown(limits_raw, tuple(_LIMIT_RANGES), "limits")
    limits = {k: _bounds(limits_raw, k, f"limits.{k}", lo, hi, k == "steps") for k, (lo, hi) in _LIMIT_RANGES.items()}
    if limits["cfg"][0] < cfg["global_min"] or limits["cfg"][1] > cfg["global_max"]:
        raise PolicyError(f"policy key limits.cfg: {list(limits['cfg'])} must lie inside the global CFG range "
                          f"[{cfg['global_min']:g}, {cfg['global_max']:g}]")
    return limits


def _parse_drivers(raw: Mapping[str, Any]) -> dict[str, str]:
    drivers_raw = _table(raw, "raw_drivers", "raw_drivers")
    _no_unknown(drivers_raw, VALUE_NAMES, "raw_drivers")
    drivers: dict[str, str] = {}
    for name in VALUE_NAMES:
        value = _string(drivers_raw, name, f"raw_drivers.{name}")
        if value not in DRIVERS:
            raise PolicyError(f"policy key raw_drivers.{name}: expected one of {list(DRIVERS)}, got {value!r}")
        drivers[name] = value
    return drivers


def parse_policy(raw: Mapping[str, Any], source: str = "<dict>") -> Policy:
    """Validate a parsed policy document and build the Policy. Raises PolicyError naming the key."""
    if not isinstance(raw, Mapping):
        raise PolicyError(f"policy: expected a table at the top level, got {type(raw).__name__}")
    _no_unknown(raw, _TOP_LEVEL, "")
    sections = _parse_sections(raw)
    cfg, cl = sections["cfg"], sections["classify"]
    limits = _parse_limits(raw, cfg)
    drivers = _parse_drivers(raw)
    model = _table(raw, "model", "model")
    _no_unknown(model, ("checkpoint", "template"), "model")
    nodes = _parse_nodes(raw)
    ranges = {f"{sec}.{k}": r for sec, spec in _SCHEMA.items() for k, r in spec.items()}
    ranges.update({f"cases.{c}.{v}": limits[VALUE_KINDS[v][0]] for c in CASES for v in VALUE_NAMES})
    try:
        contract = parse_template_contract(_table(raw, "template", "template"), nodes)
        tunables = parse_tunables(raw, ranges)
    except (ContractError, TunableError) as exc:
        raise PolicyError(str(exc)) from None
    return Policy(
        version=_string(raw, "version", "version"),
        checkpoint=_string(model, "checkpoint", "model.checkpoint"),
        template=_string(model, "template", "model.template"),
        nodes=MappingProxyType(nodes),
        template_contract=contract,
        cfg=MappingProxyType(cfg),
        intent=MappingProxyType(sections["intent"]),
        classify=MappingProxyType(cl),
        cases=MappingProxyType(_parse_cases(raw, cfg, limits, sections["hard_rules"]["ip_gap"])),
        limits=MappingProxyType(limits),
        modifiers=MappingProxyType(sections["modifiers"]),
        signals=MappingProxyType(sections["signals"]),
        reference_modes=MappingProxyType(sections["reference_modes"]),
        raw_drivers=MappingProxyType(drivers),
        hard_rules=MappingProxyType(sections["hard_rules"]),
        sanitise=MappingProxyType(sections["sanitise"]),
        line_quality=MappingProxyType(sections["line_quality"]),
        prompts=MappingProxyType(_parse_prompts(raw)),
        tunables=MappingProxyType(tunables),
        source=source,
    )


def load_policy(path: str | Path | None = None, overlay: str | Path | None = None) -> Policy:
    """Read and validate a policy file (the shipped one when path is None).

    overlay: a calibrated overlay file applied on top (agents/policy/overlay.py); an absent or invalid
    overlay leaves the locked policy in force (load_with_overlay says why)."""
    if overlay is not None:
        from .overlay import load_with_overlay

        return load_with_overlay(overlay, path).policy
    raw, p = read_policy_document(path)
    return parse_policy(raw, source=str(p))


def read_policy_document(path: str | Path | None = None) -> tuple[dict[str, Any], Path]:
    """(the parsed TOML of a policy file, its path): the shipped one when path is None; PolicyError names
    a missing or malformed file."""
    p = Path(path) if path is not None else DEFAULT_POLICY_PATH
    try:
        with p.open("rb") as fh:
            return tomllib.load(fh), p
    except FileNotFoundError as exc:
        raise PolicyError(f"policy file {p}: not found") from exc
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"policy file {p}: not valid TOML ({exc})") from exc


@lru_cache(maxsize=1)
def default_policy() -> Policy:
    """The shipped policy, parsed once per process."""
    return load_policy()


def raw_default_policy() -> dict[str, Any]:
    """The shipped policy as a fresh mutable dict (for tests and tools that derive variants)."""
    return read_policy_document()[0]
