"""Exploration with logged propensities (off unless asked for): jitter a plan's driven values a little inside
their dynamic bounds, re-apply the hard rules, and return the density of the choice so a candidate
policy can be scored on the log without bias (inverse propensity / doubly robust: off_policy.py)."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from ..planning.director_rules import apply_hard_rules, rule_violations
from ..planning.plan_types import Plan
from ..policy import VALUE_KINDS, Policy

EXPLORED = ("cfg1", "cfg2", "denoise1", "denoise2", "union_strength", "pose_strength", "ip1_weight", "ip2_weight")


class ExplorationError(ValueError):
    """The jittered plan broke a hard rule (never expected: the rules only lower values)."""


def jitter_window(value: float, bounds: tuple[float, float] | list[float], share: float) -> tuple[float, float]:
    lo, hi = float(bounds[0]), float(bounds[1])
    w = share * (hi - lo)
    return max(lo, value - w), min(hi, value + w)


def windows(p: Plan, share: float) -> dict[str, tuple[float, float]]:
    """Each explored value's jitter window around the plan's pre-rule value (uniform kernel support)."""
    start = p.diagnostics.get("pre_rules") or p.values()
    return {name: jitter_window(float(start[name]), p.bounds[name], share) for name in EXPLORED}


def explore(p: Plan, policy: Policy, rng: np.random.Generator,
            share: float) -> tuple[dict[str, float], float, dict[str, float], dict[str, float]]:
    """(values, log density of the jitter, the jittered pre-rule values, {"H", "H_after"}).

    Like the Director: the pre-rule values (inside the dynamic bounds) are jittered, each explored one
    uniform in its window, and then the hard rules run in full. The density is that of the pre-rule
    draw; the rules are a fixed map applied after it, so the same map applied to a candidate's draw
    keeps the ratio of two policies' densities meaningful."""
    d = p.diagnostics
    start = d.get("pre_rules") or p.values()
    values = {k: float(v) for k, v in start.items()}
    log_density = 0.0
    for name in EXPLORED:
        lo, hi = jitter_window(values[name], p.bounds[name], share)
        if hi - lo > 1e-12:
            values[name] = float(rng.uniform(lo, hi))
            log_density -= float(np.log(hi - lo))
    pre = dict(values)
    cap1, cap2 = float(d["cfg1_effective_max"]), float(d["cfg2_effective_max"])
    _clamps, h = apply_hard_rules(values, conflict=float(d["conflict_penalty"]), policy=policy, cfg1_cap=cap1,
                                  cfg2_cap=cap2)
    bad = rule_violations(values, policy=policy, pre_rules=pre, h_trigger=h["H"], cfg1_cap=cap1, cfg2_cap=cap2)
    if bad:
        raise ExplorationError(f"exploration broke hard rule(s) {bad}")
    for name, (_kind, integer) in VALUE_KINDS.items():
        if integer:
            values[name] = float(round(values[name]))
    return values, log_density, pre, h


def explored_plan(p: Plan, policy: Policy, rng: np.random.Generator, share: float) -> Plan:
    """The plan with its explored values in place and `diagnostics.exploration` saying what was planned,
    the jitter share, the pre-rule draw and its log density (what an off-policy estimate needs)."""
    values, log_density, pre, h = explore(p, policy, rng, share)
    planned = dict(p.values())
    typed: dict[str, Any] = {k: int(round(v)) if VALUE_KINDS[k][1] else float(v) for k, v in values.items()}
    diagnostics = dict(p.diagnostics)
    diagnostics.update(pre_rules=pre, H_hallucination_risk=h["H"], H_after_dampening=h["H_after"])
    diagnostics["exploration"] = {"share": share, "log_density": log_density, "planned": planned, "draw": pre,
                                  "windows": {k: list(w) for k, w in windows(p, share).items()}}
    diagnostics["dual_ip"] = {k: typed[k] for k in ("ip1_weight", "ip1_end_at", "ip2_weight", "ip2_end_at")}
    return dataclasses.replace(p, **typed, diagnostics=diagnostics, signals=dict(p.signals, H=h["H"]))
