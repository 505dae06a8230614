"""Exploration with logged propensities (off unless asked for): jitter a plan's driven values a little inside
their dynamic bounds, re-apply the hard rules, and return the density of the choice so a candidate
policy can be scored on the log without bias (inverse propensity / doubly robust, see offpolicy.py)."""

from __future__ import annotations

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


def explore(p: Plan, policy: Policy, rng: np.random.Generator, share: float) -> tuple[dict[str, float], float]:
    """(values, log density of the jitter): each explored value uniform in its window, then the hard rules.

    The density is that of the pre-rule draw; the rules are a fixed map applied after it, so the
    same map applied to a candidate's draw keeps the ratio of two policies' densities meaningful."""
    values = {k: float(v) for k, v in p.values().items()}
    log_density = 0.0
    for name in EXPLORED:
        lo, hi = jitter_window(values[name], p.bounds[name], share)
        if hi - lo > 1e-12:
            values[name] = float(rng.uniform(lo, hi))
            log_density -= float(np.log(hi - lo))
    d = p.diagnostics
    apply_hard_rules(values, conflict=float(d["conflict_penalty"]), cfg1_cap=float(d["cfg1_effective_max"]),
                     cfg2_cap=float(d["cfg2_effective_max"]), policy=policy, one_shot=False)
    bad = rule_violations(values, cfg1_cap=float(d["cfg1_effective_max"]), cfg2_cap=float(d["cfg2_effective_max"]),
                          policy=policy)
    if bad:
        raise ExplorationError(f"exploration broke hard rule(s) {bad}")
    for name, (_kind, integer) in VALUE_KINDS.items():
        if integer:
            values[name] = float(round(values[name]))
    return values, log_density
