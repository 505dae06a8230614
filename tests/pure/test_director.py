"""The Animation Director: each step, rule and modifier moves values the way seed 004 says."""

from __future__ import annotations

import copy
import dataclasses
import math

import pytest

from agents.measure.analysis_types import ReferenceReport
from agents.planning.animation_director import PlanInputError, plan, plan_violations, safer_retry
from agents.planning.director_rules import apply_hard_rules
from agents.planning.plan_types import Plan
from agents.policy import default_policy, parse_policy, raw_default_policy
from host.records import make_analysis, make_reference

POL = default_policy()


analysis = make_analysis
reference = make_reference


def policy_with(mutate):
    raw = copy.deepcopy(raw_default_policy())
    mutate(raw)
    return parse_policy(raw)


# ---- step 1 -----------------------------------------------------------------------------------
@pytest.mark.parametrize(("kw", "case"), [
    ({}, "single_simple"),
    ({"complexity_score": 0.8}, "single_complex"),
    ({"construction_lines": 0.6}, "single_complex"),
    ({"object_count": 3}, "multi_object"),
])
def test_case_classification(kw, case):
    assert plan(analysis(**kw), reference()).case == case


@pytest.mark.parametrize(("scale", "label"), [(0.1, "small"), (0.45, "medium"), (0.9, "large")])
def test_object_scale(scale, label):
    assert plan(analysis(subject_scale=scale), reference()).object_scale == label


def test_case_caps_reach_the_plan():
    for kw, case in (({}, "single_simple"), ({"complexity_score": 0.9}, "single_complex"),
                     ({"object_count": 4}, "multi_object")):
        p = plan(analysis(**kw), reference(), intent_strength=1.0)
        c = POL.cases[case]
        assert p.diagnostics["cfg1_effective_max"] == c.cfg1_eff_max
        assert p.diagnostics["cfg2_effective_max"] == c.cfg2_eff_max
        assert p.cfg1 <= c.cfg1_eff_max and p.cfg2 <= c.cfg2_eff_max


# ---- step 3: modifiers --------------------------------------------------------------------------
def test_colored_reference_lowers_ip2_max_and_ends_ip2_earlier():
    plain, colored = plan(analysis(), reference()), plan(analysis(), reference(colored=True))
    assert colored.bounds["ip2_weight"][1] < plain.bounds["ip2_weight"][1]
    assert colored.ip2_end_at < plain.ip2_end_at
    assert colored.bounds["ip2_end_at"][1] < plain.bounds["ip2_end_at"][1]
    assert colored.diagnostics["reference_mode"] == "guarded"


def test_high_conflict_lowers_ip1_and_ip2_maxima():
    low, high = plan(analysis(), reference(conflict_penalty=0.1)), plan(analysis(), reference(conflict_penalty=0.7))
    assert high.bounds["ip1_weight"][1] < low.bounds["ip1_weight"][1]
    assert high.bounds["ip2_weight"][1] < low.bounds["ip2_weight"][1]
    assert high.ip1_weight < low.ip1_weight and high.ip2_weight <= low.ip2_weight
    assert high.diagnostics["R_reference_reliability"] < low.diagnostics["R_reference_reliability"]


def test_high_pose_risk_raises_the_openpose_target():
    low = plan(analysis(anatomy_risk_score=0.2), reference())
    high = plan(analysis(anatomy_risk_score=0.95), reference())
    assert high.diagnostics["P_pose_risk"] > low.diagnostics["P_pose_risk"]
    assert high.bounds["pose_strength"][0] > low.bounds["pose_strength"][0]
    assert high.pose_strength > low.pose_strength and high.pose_end > low.pose_end


def test_object_scale_moves_the_union_ceiling():
    small, medium, large = (plan(analysis(subject_scale=s), reference()) for s in (0.1, 0.45, 0.9))
    assert large.bounds["union_strength"][1] < medium.bounds["union_strength"][1] < small.bounds["union_strength"][1]
    assert large.union_strength < medium.union_strength < small.union_strength


def test_line_quality_moves_ks1_repair_room_and_ks2_interference():
    low, mid, high = (plan(analysis(line_quality_score=q), reference()) for q in (0.2, 0.6, 0.9))
    assert low.bounds["denoise1"][1] > mid.bounds["denoise1"][1]
    assert low.bounds["ip1_weight"][1] > mid.bounds["ip1_weight"][1]
    assert high.bounds["denoise2"][1] < mid.bounds["denoise2"][1]
    assert high.bounds["ip2_weight"][1] < mid.bounds["ip2_weight"][1]


# ---- step 4: signals and raw values ------------------------------------------------------------
def test_structure_confidence_falls_with_construction_broken_and_messy_lines():
    clean = plan(analysis(construction_lines=0.0, broken_lines=0.0, line_quality_score=1.0), reference())
    messy = plan(analysis(construction_lines=0.8, broken_lines=0.8, line_quality_score=0.1), reference())
    assert clean.signals["S"] > 0.9 and messy.signals["S"] < 0.3
    assert messy.denoise1 > clean.denoise1 and messy.union_strength < clean.union_strength


def test_reference_reliability_is_similarity_times_one_minus_conflict():
    p = plan(analysis(), reference(similarity=0.6, conflict_penalty=0.25))
    assert p.signals["R"] == pytest.approx(0.6 * 0.75)
    assert plan(analysis(), ReferenceReport.absent()).signals["R"] == 0.0


def test_absent_reference_turns_the_reference_off_and_ip_to_floor():
    p = plan(analysis(), ReferenceReport.absent())
    assert p.diagnostics["reference_mode"] == "off" and p.diagnostics["_influence_scalar"] == 0.0
    assert p.ip1_weight == p.bounds["ip1_weight"][0] and p.ip2_weight == p.bounds["ip2_weight"][0]


def test_reliable_low_conflict_reference_reaches_identity_or_style_mode():
    def mode(sim: float, conflict: float) -> str:
        return plan(analysis(), reference(similarity=sim, conflict_penalty=conflict)).diagnostics["reference_mode"]

    assert (mode(0.95, 0.05), mode(0.6, 0.2), mode(0.9, 0.6)) == ("identity", "style", "guarded")


def test_intent_strength_raises_the_cfg_floor():
    messy = analysis(construction_lines=0.3, broken_lines=0.5, line_quality_score=0.2)  # low S: the floor binds
    weak = plan(messy, reference(), intent_strength=0.0)
    strong = plan(messy, reference(), intent_strength=1.0)
    assert strong.diagnostics["base_cfg"] == pytest.approx(7.2 + 1.8)
    assert weak.diagnostics["base_cfg"] == pytest.approx(7.2)
    assert strong.cfg1 > weak.cfg1


# ---- step 6: each hard rule, on hand-made values ------------------------------------------------
def _values(**kw) -> dict[str, float]:
    v = dict(cfg1=8.5, cfg2=8.0, denoise1=0.7, denoise2=0.3, steps1=24.0, steps2=16.0, union_strength=0.6,
             union_end=0.8, pose_strength=0.3, pose_end=0.6, ip1_weight=0.6, ip1_end_at=0.8, ip2_weight=0.3,
             ip2_end_at=0.6)
    v.update(kw)
    return v


def _rules(values, conflict=0.0, cap1=9.6, cap2=8.6, **kw):
    clamps, h = apply_hard_rules(values, conflict=conflict, cfg1_cap=cap1, cfg2_cap=cap2, policy=POL, **kw)
    return {c["rule"] for c in clamps}, clamps, h


def test_rule_ip2_absolute_ceiling():
    v = _values(ip1_weight=0.9, ip2_weight=0.7, cfg2=7.0)
    rules, _, _ = _rules(v)
    assert "ip2_abs_max" in rules and v["ip2_weight"] <= 0.55


def test_rule_ip2_at_least_gap_under_ip1():
    v = _values(ip1_weight=0.4, ip2_weight=0.38)
    rules, _, _ = _rules(v)
    assert "ip_asymmetry" in rules and v["ip2_weight"] == pytest.approx(0.30)


def test_rule_denoise2_ceiling():
    v = _values(denoise2=0.75)
    rules, _, _ = _rules(v)
    assert "denoise2_max" in rules and v["denoise2"] == 0.60


@pytest.mark.parametrize("kw", [{"union_strength": 0.8}, {"pose_strength": 0.95}])
def test_rule_union_pose_coupling_lowers_cfg1(kw):
    v = _values(**kw)
    _rules(v)
    assert v["cfg1"] == pytest.approx(8.5 - 0.4)


def test_rule_coupling_is_skipped_in_retry_mode():
    v = _values(union_strength=0.8)
    _rules(v, one_shot=False)
    assert v["cfg1"] == 8.5


def test_rule_cfg2_not_above_cfg1():
    v = _values(cfg1=7.6, cfg2=8.2)
    rules, _, _ = _rules(v)
    assert "cfg2_le_cfg1" in rules and v["cfg2"] <= v["cfg1"]


@pytest.mark.parametrize(("ip2", "cap"), [(0.45, 7.8), (0.52, 7.4)])
def test_rule_ip2_coupled_cfg2_caps(ip2, cap):
    v = _values(ip1_weight=0.7, ip2_weight=ip2, cfg1=9.0, cfg2=8.5)
    rules, _, _ = _rules(v)
    assert "ip2_cfg2_cap" in rules and v["cfg2"] == cap


def test_rule_high_h_dampens_both_cfgs():
    v = _values(cfg1=9.5, cfg2=8.6, denoise2=0.6, ip1_weight=0.65, ip2_weight=0.4)
    rules, _, h = _rules(v, conflict=1.0)
    assert h["H"] > 0.6 and "h_dampening" in rules
    assert v["cfg1"] == pytest.approx(9.5 - 0.3) and v["cfg2"] == pytest.approx(8.6 - 0.5)
    assert h["H_after"] < h["H"]


def test_rule_global_floor_wins_after_dampening():
    v = _values(cfg1=7.1, cfg2=7.0, denoise2=0.6, ip1_weight=0.65, ip2_weight=0.4, union_strength=0.9)
    rules, _, _ = _rules(v, conflict=1.0)
    assert v["cfg1"] == 7.0 and v["cfg2"] == 7.0 and "global_cfg" in rules


def test_rule_effective_cap_rechecked():
    v = _values(cfg1=9.9, cfg2=8.0)
    rules, _, _ = _rules(v, cap1=9.2)
    assert "effective_cap" in rules and v["cfg1"] == 9.2


def test_rules_run_in_the_documented_order():
    v = _values(ip1_weight=0.6, ip2_weight=0.7, denoise2=0.7, union_strength=0.9, cfg1=8.0, cfg2=8.6)
    _, clamps, _ = _rules(v, conflict=1.0)
    order = [c["rule"] for c in clamps]
    expected = ["ip2_abs_max", "ip_asymmetry", "denoise2_max", "union_pose_coupling", "cfg2_le_cfg1",
                "ip2_cfg2_cap", "h_dampening"]
    assert [r for r in expected if r in order] == sorted(set(order) & set(expected), key=order.index)
    assert order.index("ip2_abs_max") < order.index("ip_asymmetry") < order.index("union_pose_coupling")
    assert order.index("union_pose_coupling") < order.index("cfg2_le_cfg1")


def test_plan_records_a_reason_for_every_changed_value():
    p = plan(analysis(anatomy_risk_score=1.0, complexity_score=0.9), reference(colored=True), intent_strength=1.0)
    assert p.diagnostics["clamps"], "this input is chosen to trigger clamps"
    for c in p.diagnostics["clamps"]:
        assert set(c) == {"rule", "field", "before", "after", "reason"} and c["before"] != c["after"]


def test_high_h_in_a_full_plan_dampens_cfg():
    # A policy with a low H threshold so the same request crosses it: both cfgs come out lower.
    calm = policy_with(lambda r: r["hard_rules"].__setitem__("h_damp_above", 0.99))
    edgy = policy_with(lambda r: r["hard_rules"].__setitem__("h_damp_above", 0.05))
    a, r = analysis(), reference(conflict_penalty=0.4)
    p_calm, p_edgy = plan(a, r, calm, intent_strength=1.0), plan(a, r, edgy, intent_strength=1.0)
    assert p_edgy.cfg1 < p_calm.cfg1 and p_edgy.cfg2 < p_calm.cfg2
    assert any(c["rule"] == "h_dampening" for c in p_edgy.diagnostics["clamps"])


# ---- inputs ------------------------------------------------------------------------------------
def test_nan_and_out_of_range_are_sanitised_and_recorded():
    p = plan(analysis(line_quality_score=float("nan"), subject_scale=3.0), reference(similarity=float("nan")))
    fields = {s["field"] for s in p.diagnostics["sanitised"]}
    assert {"analysis.line_quality_score", "analysis.subject_scale", "reference.similarity"} <= fields
    assert p.signals["R"] == 0.0 and p.object_scale == "large"
    assert all(math.isfinite(v) for v in p.values().values())
    Plan.from_json(p.to_json())  # strict JSON: no NaN anywhere in the plan


def test_non_numeric_signal_is_refused_with_its_name():
    with pytest.raises(PlanInputError, match=r"analysis\.broken_lines"):
        plan(analysis(broken_lines="lots"), reference())
    with pytest.raises(PlanInputError, match="reference"):
        plan(analysis(), {"similarity": 1})  # type: ignore[arg-type]


def test_plan_is_deterministic_and_round_trips():
    a, r = analysis(), reference(colored=True)
    p1, p2 = plan(a, r), plan(copy.deepcopy(a), copy.deepcopy(r))
    assert p1.to_json() == p2.to_json()
    back = Plan.from_json(p1.to_json())
    assert back == p1 and dataclasses.asdict(back) == p1.to_dict()


def test_node_inputs_follow_the_driver_map():
    p = plan(analysis(), reference())
    inputs = p.node_inputs(include_prompts=False)
    assert inputs["5"] == {"steps": p.steps1, "cfg": p.cfg1, "denoise": p.denoise1}
    assert inputs["105"] == {"weight": p.ip2_weight, "end_at": p.ip2_end_at}
    assert "2" not in inputs
    with pytest.raises(ValueError, match="ks1_positive"):
        p.node_inputs()


# ---- the safer retry ---------------------------------------------------------------------------
def test_safer_retry_lowers_ks2_and_keeps_every_rule():
    p = plan(analysis(line_quality_score=0.3), reference(), intent_strength=1.0)
    q = safer_retry(p, cfg2_step=0.4, ip2_step=0.1, denoise2_step=0.08, reason="dotted lines")
    assert q.is_retry and q.diagnostics["retry"]["reason"] == "dotted lines"
    for name in ("cfg2", "ip2_weight", "denoise2"):
        lo = p.bounds[name][0]
        assert getattr(q, name) < getattr(p, name) or getattr(p, name) == pytest.approx(lo)
    assert q.cfg1 <= p.cfg1 and q.ip1_weight == p.ip1_weight
    assert plan_violations(q) == []


def test_safer_retry_runs_once_and_checks_its_steps():
    p = plan(analysis(), reference())
    with pytest.raises(PlanInputError, match="cfg2_step"):
        safer_retry(p, cfg2_step=-1, ip2_step=0.1, denoise2_step=0.1, reason="x")
    q = safer_retry(p, cfg2_step=0.4, ip2_step=0.1, denoise2_step=0.08, reason="x")
    with pytest.raises(PlanInputError, match="already a safer retry"):
        safer_retry(q, cfg2_step=0.4, ip2_step=0.1, denoise2_step=0.08, reason="x")
