"""The Animation Director: sketch analysis + reference report -> an M4 plan (seed 004 sections 4-6, 12, 14).

`plan` runs the section 14 order literally, one function per step:
  1 classify case and object scale   2 load case bounds + effective CFG caps
  3 signal modifiers on the bounds   4 signals S/R/D/P and raw values
  5 clamp into the dynamic bounds    6 hard rules (agents/director_rules.py)
  7 diagnostics
Pure and deterministic: the same inputs and policy give the same plan, bit for bit.
"""

from __future__ import annotations

import math
from typing import Any

from ..measure.analysis_types import ReferenceReport, VisualAnalysis
from ..policy import VALUE_KINDS, VALUE_NAMES, Policy, default_policy
from .director_rules import Clamp, apply_hard_rules, rule_violations
from .director_signals import (
    DirectorInputs,
    PlanInputError,
    Signals,
    classify,
    compute_signals,
    sanitise_inputs,
)
from .input_warnings import input_warnings
from .plan_types import Plan

__all__ = ["PlanInputError", "RuleViolation", "plan", "plan_violations", "safer_retry"]

Bounds = dict[str, list[float]]


class RuleViolation(RuntimeError):
    """A finished plan broke a hard rule: a bug in the Director or an impossible custom policy."""


# ---- step 2 ------------------------------------------------------------------------------------
def _case_bounds(case: str, policy: Policy) -> tuple[Bounds, float, float]:
    profile = policy.cases[case]
    bounds = {name: list(profile.bounds[name]) for name in VALUE_NAMES}
    # The effective stage caps sit on top of the case's cfg bounds.
    for name, cap in (("cfg1", profile.cfg1_eff_max), ("cfg2", profile.cfg2_eff_max)):
        lo, hi = bounds[name]
        bounds[name] = [min(lo, cap), min(hi, cap)]
    return bounds, profile.cfg1_eff_max, profile.cfg2_eff_max


# ---- step 3 ------------------------------------------------------------------------------------
class _BoundsEditor:
    """Moves bounds inside the policy limits and logs each move."""

    def __init__(self, bounds: Bounds, policy: Policy) -> None:
        self.bounds = bounds
        self.policy = policy
        self.log: list[dict[str, Any]] = []

    def _store(self, modifier: str, name: str, lo: float, hi: float) -> None:
        lim_lo, lim_hi = self.policy.value_limits(name)
        lo, hi = min(max(lo, lim_lo), lim_hi), min(max(hi, lim_lo), lim_hi)
        lo = min(lo, hi)
        before = list(self.bounds[name])
        if [lo, hi] != before:
            self.bounds[name] = [lo, hi]
            self.log.append({"modifier": modifier, "field": name, "before": before, "after": [lo, hi]})

    def upper(self, modifier: str, name: str, delta: float) -> None:
        lo, hi = self.bounds[name]
        self._store(modifier, name, lo, hi + delta)

    def shift(self, modifier: str, name: str, delta: float) -> None:
        lo, hi = self.bounds[name]
        self._store(modifier, name, lo + delta, hi + delta)


def _apply_modifiers(bounds: Bounds, inputs: DirectorInputs, signals_p: float, scale: str,
                     policy: Policy) -> list[dict[str, Any]]:
    m = policy.modifiers
    ed = _BoundsEditor(bounds, policy)
    if inputs.reference_present and inputs.conflict_penalty >= m["conflict_high"]:
        ed.upper("conflict_high", "ip1_weight", -m["conflict_ip1_max_drop"])
        ed.upper("conflict_high", "ip2_weight", -m["conflict_ip2_max_drop"])
        ed.upper("conflict_high", "ip2_end_at", -m["conflict_ip2_end_drop"])
    if inputs.reference_present and inputs.colored:
        ed.upper("colored_reference", "ip2_weight", -m["colored_ip2_max_drop"])
        ed.shift("colored_reference", "ip2_end_at", -m["colored_ip2_end_shift"])
    if inputs.line_quality_score < m["low_lq_below"]:
        ed.upper("low_line_quality", "denoise1", m["low_lq_denoise1_raise"])
        ed.upper("low_line_quality", "ip1_weight", m["low_lq_ip1_raise"])
    if inputs.line_quality_score > m["high_lq_above"]:
        ed.upper("high_line_quality", "denoise2", -m["high_lq_denoise2_drop"])
        ed.upper("high_line_quality", "ip2_weight", -m["high_lq_ip2_drop"])
    if signals_p >= m["high_p_above"]:
        ed.shift("high_pose_risk", "pose_strength", m["high_p_pose_raise"])
        ed.upper("high_pose_risk", "ip2_weight", -m["high_p_ip2_drop"])
    if scale == "large":
        ed.upper("large_object", "union_strength", -m["large_union_max_drop"])
    elif scale == "small":
        ed.upper("small_object", "union_strength", m["small_union_max_raise"])
    # Keep the dual-IP gap possible inside the bounds, so rule 2 never leaves them.
    gap = policy.hard_rules["ip_gap"]
    ip1_lo, ip1_hi = bounds["ip1_weight"]
    ip2_lo, ip2_hi = bounds["ip2_weight"]
    if ip2_lo > ip1_lo - gap or ip2_hi > ip1_hi - gap:
        new_lo = max(0.0, min(ip2_lo, ip1_lo - gap))
        ed._store("ip_gap_bounds", "ip2_weight", new_lo, max(new_lo, min(ip2_hi, ip1_hi - gap)))
    return ed.log


# ---- step 4 ------------------------------------------------------------------------------------
def _raw_values(bounds: Bounds, signals: Signals, policy: Policy) -> tuple[dict[str, float], dict[str, float]]:
    raw: dict[str, float] = {}
    for name in VALUE_NAMES:
        lo, hi = bounds[name]
        t = signals.driver(policy.raw_drivers[name])
        value = lo + t * (hi - lo)
        raw[name] = float(round(value)) if VALUE_KINDS[name][1] else value
    c = policy.cfg
    base_cfg = c["base_offset"] + c["base_span"] * signals.intent
    floors = {"cfg1": base_cfg, "cfg2": base_cfg - c["cfg2_floor_drop"]}
    for name, floor in floors.items():
        raw[name] = max(raw[name], floor)
    return raw, {"base_cfg": base_cfg, "cfg1_floor": floors["cfg1"], "cfg2_floor": floors["cfg2"]}


# ---- step 5 ------------------------------------------------------------------------------------
def _clamp_to_bounds(raw: dict[str, float], bounds: Bounds) -> tuple[dict[str, float], list[Clamp]]:
    values: dict[str, float] = {}
    clamps: list[Clamp] = []
    for name in VALUE_NAMES:
        lo, hi = bounds[name]
        v = min(max(raw[name], lo), hi)
        if VALUE_KINDS[name][1]:
            v = float(min(max(round(v), math.ceil(lo)), math.floor(hi)))
        if abs(v - raw[name]) > 1e-9:
            side = "upper" if raw[name] > hi else "lower"
            clamps.append({"rule": "dynamic_bounds", "field": name, "before": raw[name], "after": v,
                           "reason": f"raw value outside the dynamic bounds [{lo:g}, {hi:g}]: {side} bound"})
        values[name] = v
    return values, clamps


# ---- assembly ------------------------------------------------------------------------------------
def _finish(values: dict[str, float]) -> dict[str, Any]:
    """The values as the Plan's fields take them (Any: each name goes to its own int or float field)."""
    return {n: int(round(values[n])) if VALUE_KINDS[n][1] else float(values[n]) for n in VALUE_NAMES}


def plan(analysis: VisualAnalysis, reference: ReferenceReport, policy: Policy | None = None, *,
         intent_strength: float | None = None) -> Plan:
    """Plan one request. Raises PlanInputError for unusable inputs; never returns a rule-breaking plan."""
    pol = policy or default_policy()
    inputs = sanitise_inputs(analysis, reference, pol, intent_strength)
    case, scale = classify(inputs, pol)                                          # step 1
    bounds, cfg1_cap, cfg2_cap = _case_bounds(case, pol)                         # step 2
    signals = compute_signals(inputs, case, pol)
    modifier_log = _apply_modifiers(bounds, inputs, signals.P, scale, pol)       # step 3
    raw, cfg_floor = _raw_values(bounds, signals, pol)                           # step 4
    values, clamps = _clamp_to_bounds(raw, bounds)                               # step 5
    pre_rules = dict(values)
    rule_clamps, h = apply_hard_rules(values, conflict=inputs.conflict_penalty, cfg1_cap=cfg1_cap,  # step 6
                                      cfg2_cap=cfg2_cap, policy=pol)
    clamps += rule_clamps
    bad = rule_violations(values, cfg1_cap=cfg1_cap, cfg2_cap=cfg2_cap, policy=pol, pre_rules=pre_rules,
                          h_trigger=h["H"])
    if bad:
        raise RuleViolation(f"plan breaks hard rule(s) {bad} (policy {pol.source})")
    final = _finish(values)
    diagnostics: dict[str, Any] = {                                              # step 7
        "S_structure_confidence": signals.S,
        "R_reference_reliability": signals.R,
        "D_style_distance": signals.D,
        "P_pose_risk": signals.P,
        "H_hallucination_risk": h["H"],
        "H_after_dampening": h["H_after"],
        "conflict_penalty": inputs.conflict_penalty,
        "reference_mode": signals.reference_mode,
        "_influence_scalar": signals.influence,
        "intent_strength": signals.intent,
        "intent_source": "input" if inputs.intent_strength is not None else "derived",
        "base_cfg": cfg_floor["base_cfg"],
        "cfg1_effective_max": cfg1_cap,
        "cfg2_effective_max": cfg2_cap,
        "dual_ip": {"ip1_weight": final["ip1_weight"], "ip1_end_at": final["ip1_end_at"],
                    "ip2_weight": final["ip2_weight"], "ip2_end_at": final["ip2_end_at"]},
        "reference_present": inputs.reference_present,
        "reference_colored": inputs.colored,
        "raw": raw,
        "pre_rules": pre_rules,
        "modifiers": modifier_log,
        "clamps": clamps,
        "sanitised": inputs.sanitised,
        "warnings": input_warnings(inputs.sanitised, empty=inputs.empty),
        "retry": None,
    }
    return Plan(case=case, object_scale=scale, **final,
                signals={"S": signals.S, "R": signals.R, "D": signals.D, "P": signals.P, "H": h["H"]},
                bounds=bounds, diagnostics=diagnostics, policy_version=pol.version)


def plan_violations(p: Plan, policy: Policy | None = None) -> list[str]:
    """Every hard rule and bound checked on a finished plan ([] when all hold)."""
    pol = policy or default_policy()
    d = p.diagnostics
    values = {n: float(v) for n, v in p.values().items()}
    bad = rule_violations(values, cfg1_cap=d["cfg1_effective_max"], cfg2_cap=d["cfg2_effective_max"],
                          policy=pol, pre_rules=d.get("pre_rules"), h_trigger=d.get("H_hallucination_risk"))
    for name in VALUE_NAMES:
        lo, hi = p.bounds[name]
        lim_lo, lim_hi = pol.value_limits(name)
        if not lim_lo - 1e-9 <= lo <= hi <= lim_hi + 1e-9:
            bad.append(f"{name} bounds [{lo}, {hi}] outside the policy limits")
        if not lo - 1e-9 <= values[name] <= hi + 1e-9:
            bad.append(f"{name} = {values[name]} outside its dynamic bounds [{lo}, {hi}]")
    return bad


def safer_retry(p: Plan, policy: Policy | None = None, *, cfg2_step: float, ip2_step: float,
                denoise2_step: float, reason: str) -> Plan:
    """The one safer retry: lower cfg2, ip2 and denoise2 by the steps, then re-apply bounds and hard rules.

    It starts from the plan's final values, so the one-shot adjustments already in them (union/pose
    coupling, H dampening) are kept, not taken twice; the caps are re-applied and H is recomputed
    (dampening again if still high). A value already at its lower bound stays there. No value
    rises. A plan that is already a retry is refused: M4 retries once.
    """
    pol = policy or default_policy()
    if not isinstance(p, Plan):
        raise PlanInputError(f"plan: expected a Plan, got {type(p).__name__}")
    if p.is_retry:
        raise PlanInputError("plan: already a safer retry (M4 re-runs at most once)")
    steps = {"cfg2": cfg2_step, "ip2_weight": ip2_step, "denoise2": denoise2_step}
    for name, step in steps.items():
        label = {"cfg2": "cfg2_step", "ip2_weight": "ip2_step", "denoise2": "denoise2_step"}[name]
        if isinstance(step, bool) or not isinstance(step, int | float) or not math.isfinite(step) or step <= 0:
            raise PlanInputError(f"{label}: expected a positive number, got {step!r}")
    if not isinstance(reason, str) or not reason.strip():
        raise PlanInputError("reason: expected a non-empty text saying why the retry runs")
    d = p.diagnostics
    values = {n: float(v) for n, v in p.values().items()}
    before = dict(values)
    clamps: list[Clamp] = []
    for name, step in steps.items():
        lo = p.bounds[name][0]
        new = max(values[name] - step, min(lo, values[name]))
        if new == values[name]:
            continue
        clamps.append({"rule": "safer_retry", "field": name, "before": values[name], "after": new,
                       "reason": f"retry: {name} lowered by {step:g} (not below {min(lo, values[name]):g})"})
        values[name] = new
    rule_clamps, h = apply_hard_rules(values, conflict=float(d["conflict_penalty"]),
                                      cfg1_cap=d["cfg1_effective_max"], cfg2_cap=d["cfg2_effective_max"],
                                      policy=pol, one_shot=False)
    clamps += rule_clamps
    bad = rule_violations(values, cfg1_cap=d["cfg1_effective_max"], cfg2_cap=d["cfg2_effective_max"], policy=pol)
    if bad:
        raise RuleViolation(f"safer retry breaks hard rule(s) {bad}")
    final = _finish(values)
    new_diag = dict(d)
    new_diag.update({
        "H_hallucination_risk": h["H"], "H_after_dampening": h["H_after"],
        "dual_ip": {k: final[k] for k in ("ip1_weight", "ip1_end_at", "ip2_weight", "ip2_end_at")},
        "clamps": list(d.get("clamps", [])) + clamps,
        "retry": {"reason": reason, "steps": {"cfg2": cfg2_step, "ip2": ip2_step, "denoise2": denoise2_step},
                  "before": {k: before[k] for k in steps}, "after": {k: final[k] for k in steps},
                  "first_plan_H": d.get("H_hallucination_risk")},
    })
    # The coupling / dampening checks refer to the original pre-rule values; the retry only lowered.
    signals = dict(p.signals, H=h["H"])
    return Plan(case=p.case, object_scale=p.object_scale, **final, signals=signals,
                bounds={k: list(v) for k, v in p.bounds.items()}, diagnostics=new_diag,
                prompts=dict(p.prompts), is_retry=True, policy_version=p.policy_version)
