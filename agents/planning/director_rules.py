"""Step 6 of the Director: the hard safety rules, in the seed's order, and a checker for all of them.

Every rule only lowers values (the final global-CFG clamp may raise to 7.0, which no earlier cap
is below), so a later rule never undoes an earlier one. Rule 8 re-checks the CFG rules after the
dampening; `rule_violations` then checks the finished values and must come back empty.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..policy import Policy
from .director_signals import hallucination_risk

_EPS = 1e-9

Clamp = dict[str, Any]


def _set(values: dict[str, float], clamps: list[Clamp], rule: str, name: str, new: float, reason: str) -> None:
    old = values[name]
    if abs(new - old) > _EPS:
        clamps.append({"rule": rule, "field": name, "before": old, "after": new, "reason": reason})
    values[name] = new


def apply_hard_rules(values: dict[str, float], *, conflict: float, cfg1_cap: float, cfg2_cap: float,
                     policy: Policy, one_shot: bool = True) -> tuple[list[Clamp], dict[str, float]]:
    """Apply rules 1-8 to `values` in place. Returns (clamp records, {"H": trigger H, "H_after": H}).

    one_shot=False skips rule 4 (union/pose coupling): used by the safer retry, which starts from
    values that already carry that adjustment and must not take it twice.
    """
    h, g = policy.hard_rules, policy.cfg
    clamps: list[Clamp] = []
    set_ = _rule_setter(values, clamps)

    # 1 absolute IP2 ceiling
    if values["ip2_weight"] > h["ip2_abs_max"]:
        set_("ip2_abs_max", "ip2_weight", h["ip2_abs_max"], f"ip2 <= {h['ip2_abs_max']:g}")
    # 2 asymmetric dual IP: KS2's adapter always weaker than KS1's
    limit = max(0.0, values["ip1_weight"] - h["ip_gap"])
    if values["ip2_weight"] > limit + _EPS:
        set_("ip_asymmetry", "ip2_weight", limit, f"ip2 <= ip1 - {h['ip_gap']:g}")
    # 3 KS2 denoise ceiling
    if values["denoise2"] > h["denoise2_max"]:
        set_("denoise2_max", "denoise2", h["denoise2_max"], f"denoise2 <= {h['denoise2_max']:g}")
    # 4 strong structure locks leave less room for prompt force in KS1
    coupled = (values["union_strength"] > h["union_couple_above"]
               or values["pose_strength"] > h["pose_couple_above"])
    if one_shot and coupled:
        set_("union_pose_coupling", "cfg1", values["cfg1"] - h["couple_cfg1_drop"],
             f"union > {h['union_couple_above']:g} or pose > {h['pose_couple_above']:g}: "
             f"cfg1 -= {h['couple_cfg1_drop']:g}")
    # 5 KS2 never guides harder than KS1
    if values["cfg2"] > values["cfg1"]:
        set_("cfg2_le_cfg1", "cfg2", values["cfg1"], "cfg2 <= cfg1")
    # 6 high IP2 with high CFG2 tears edges: IP2-coupled CFG2 caps
    _ip2_caps(values, set_, policy)
    # 7 late-stage dampening on hallucination risk (computed on what KS2 would now run)
    h_trigger = hallucination_risk(values["cfg2"], values["denoise2"], values["ip2_weight"], conflict, policy)
    if h_trigger > h["h_damp_above"]:
        why = f"H = {h_trigger:.3f} > {h['h_damp_above']:g}"
        set_("h_dampening", "cfg1", values["cfg1"] - h["h_damp_cfg1"], f"{why}: cfg1 -= {h['h_damp_cfg1']:g}")
        set_("h_dampening", "cfg2", values["cfg2"] - h["h_damp_cfg2"], f"{why}: cfg2 -= {h['h_damp_cfg2']:g}")
    # 8 re-check after dampening: global CFG range, effective stage caps, cfg2 <= cfg1, IP2 caps
    for name, cap in (("cfg1", cfg1_cap), ("cfg2", cfg2_cap)):
        if values[name] > cap:
            set_("effective_cap", name, cap, f"{name} <= effective cap {cap:g}")
        if values[name] > g["global_max"]:
            set_("global_cfg", name, g["global_max"], f"CFG <= {g['global_max']:g}")
        if values[name] < g["global_min"]:
            set_("global_cfg", name, g["global_min"], f"CFG >= {g['global_min']:g} (global floor wins)")
    if values["cfg2"] > values["cfg1"]:
        set_("cfg2_le_cfg1", "cfg2", values["cfg1"], "cfg2 <= cfg1 (re-check)")
    _ip2_caps(values, set_, policy)
    h_after = hallucination_risk(values["cfg2"], values["denoise2"], values["ip2_weight"], conflict, policy)
    return clamps, {"H": h_trigger, "H_after": h_after}


def _rule_setter(values: dict[str, float], clamps: list[Clamp]) -> Callable[[str, str, float, str], None]:
    def set_(rule: str, name: str, new: float, reason: str) -> None:
        _set(values, clamps, rule, name, new, reason)

    return set_


def _ip2_caps(values: dict[str, float], set_: Callable[[str, str, float, str], None], policy: Policy) -> None:
    h = policy.hard_rules
    for above, cap in ((h["ip2_cap1_above"], h["ip2_cap1_cfg2"]), (h["ip2_cap2_above"], h["ip2_cap2_cfg2"])):
        if values["ip2_weight"] > above and values["cfg2"] > cap:
            set_("ip2_cfg2_cap", "cfg2", cap, f"ip2 > {above:g} => cfg2 <= {cap:g}")


def rule_violations(values: dict[str, float], *, cfg1_cap: float, cfg2_cap: float, policy: Policy,
                    pre_rules: dict[str, float] | None = None, h_trigger: float | None = None) -> list[str]:
    """Every hard rule checked on finished values; [] when all hold.

    The two "-=" rules are actions, not states: with pre_rules (the values before step 6) and
    the trigger H they are checked as "cfg1 is at least that much below where it was, or at 7.0".
    """
    h, g = policy.hard_rules, policy.cfg
    v = values
    bad: list[str] = []

    def need(ok: bool, text: str) -> None:
        if not ok:
            bad.append(text)

    need(v["ip2_weight"] <= v["ip1_weight"] - h["ip_gap"] + _EPS, "ip2 <= ip1 - gap")
    need(v["ip2_weight"] <= h["ip2_abs_max"] + _EPS, "ip2 <= ip2_abs_max")
    need(v["cfg2"] <= v["cfg1"] + _EPS, "cfg2 <= cfg1")
    need(v["denoise2"] <= h["denoise2_max"] + _EPS, "denoise2 <= denoise2_max")
    if v["ip2_weight"] > h["ip2_cap1_above"]:
        need(v["cfg2"] <= h["ip2_cap1_cfg2"] + _EPS, "ip2 > cap1_above => cfg2 <= cap1")
    if v["ip2_weight"] > h["ip2_cap2_above"]:
        need(v["cfg2"] <= h["ip2_cap2_cfg2"] + _EPS, "ip2 > cap2_above => cfg2 <= cap2")
    for name, cap in (("cfg1", cfg1_cap), ("cfg2", cfg2_cap)):
        need(g["global_min"] - _EPS <= v[name] <= g["global_max"] + _EPS, f"{name} in global CFG range")
        need(v[name] <= cap + _EPS, f"{name} <= effective cap")
    if pre_rules is not None:
        floor = g["global_min"]
        if v["union_strength"] > h["union_couple_above"] or v["pose_strength"] > h["pose_couple_above"]:
            need(v["cfg1"] <= max(floor, pre_rules["cfg1"] - h["couple_cfg1_drop"]) + _EPS,
                 "union/pose coupling lowered cfg1")
        if h_trigger is not None and h_trigger > h["h_damp_above"]:
            need(v["cfg1"] <= max(floor, pre_rules["cfg1"] - h["h_damp_cfg1"]) + _EPS, "H dampening lowered cfg1")
            need(v["cfg2"] <= max(floor, pre_rules["cfg2"] - h["h_damp_cfg2"]) + _EPS, "H dampening lowered cfg2")
    return bad
