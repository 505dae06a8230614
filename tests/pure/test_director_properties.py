"""Property tests: on thousands of random (also NaN / out-of-range) inputs every hard rule and bound holds.

The invariants are written out here from the seed and the policy constants, not taken from the
Director's own checker, so a bug shared by the rules and their checker still fails these tests.
"""

from __future__ import annotations

import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents.measure.analysis_types import ReferenceReport, VisualAnalysis
from agents.planning.animation_director import plan, plan_violations, safer_retry
from agents.policy import default_policy

POL = default_policy()
EPS = 1e-9
# Values no signal modifier touches must stay inside the case's own bounds.
UNMODIFIED = ("cfg1", "cfg2", "steps1", "steps2", "union_end", "pose_end", "ip1_end_at")

wild = st.one_of(
    st.floats(min_value=0.0, max_value=1.0),
    st.floats(min_value=-3.0, max_value=3.0),
    st.sampled_from([float("nan"), float("inf"), float("-inf"), 0.0, 1.0, 0.5]),
)


@st.composite
def analyses(draw) -> VisualAnalysis:
    return VisualAnalysis(
        image_name="h", empty=draw(st.booleans()), line_quality="structured", line_quality_score=draw(wild),
        construction_lines=draw(wild), broken_lines=draw(wild), stroke_width_consistency=0.5,
        complexity="simple", complexity_score=draw(wild), object_count=draw(st.integers(-2, 12)),
        subject_scale=draw(wild), anatomy_risk="low", anatomy_risk_score=draw(wild), anatomy_source="structure",
    )


@st.composite
def references(draw) -> ReferenceReport:
    if draw(st.integers(0, 5)) == 0:
        return ReferenceReport.absent()
    return ReferenceReport(
        present=True, reason="", similarity=draw(wild), similarity_source="classical", text_conflict=0.0,
        image_conflict=0.0, conflict_penalty=draw(wild), style_distance=draw(wild), colored=draw(st.booleans()),
        saturation=0.0, accessory_conflict=draw(wild), reference_final_score=0.0,
    )


intents = st.one_of(st.none(), wild)


def _modifier_slack() -> tuple[float, float]:
    m = POL.modifiers
    down = max(m[k] for k in m if k.endswith(("_drop", "_shift"))) * 3
    up = max(m[k] for k in m if k.endswith("_raise"))
    return down, up


def assert_hard_rules(p) -> None:
    v, h, g = p.values(), POL.hard_rules, POL.cfg
    case = POL.cases[p.case]
    assert all(math.isfinite(x) for x in v.values())
    assert v["ip2_weight"] <= v["ip1_weight"] - 0.10 + EPS
    assert v["ip2_weight"] <= 0.55 + EPS
    assert v["cfg2"] <= v["cfg1"] + EPS
    assert v["denoise2"] <= 0.60 + EPS
    if v["ip2_weight"] > 0.40:
        assert v["cfg2"] <= 7.8 + EPS
    if v["ip2_weight"] > 0.50:
        assert v["cfg2"] <= 7.4 + EPS
    for name in ("cfg1", "cfg2"):
        assert 7.0 - EPS <= v[name] <= 10.0 + EPS
    assert v["cfg1"] <= case.cfg1_eff_max + EPS and v["cfg2"] <= case.cfg2_eff_max + EPS
    pre = p.diagnostics["pre_rules"]
    if v["union_strength"] > 0.75 or v["pose_strength"] > 0.90:
        assert v["cfg1"] <= max(g["global_min"], pre["cfg1"] - h["couple_cfg1_drop"]) + EPS
    if p.diagnostics["H_hallucination_risk"] > 0.6:
        assert v["cfg1"] <= max(7.0, pre["cfg1"] - 0.3) + EPS and v["cfg2"] <= max(7.0, pre["cfg2"] - 0.5) + EPS
    down, up = _modifier_slack()
    for name, value in v.items():
        lo, hi = case.bounds[name]
        lim_lo, lim_hi = POL.value_limits(name)
        assert lim_lo - EPS <= value <= lim_hi + EPS, name
        if name in UNMODIFIED:
            assert lo - EPS <= value <= hi + EPS, name
        else:
            assert lo - down - EPS <= value <= hi + up + EPS, name
        b_lo, b_hi = p.bounds[name]
        assert b_lo - EPS <= value <= b_hi + EPS, name
    assert isinstance(v["steps1"], int) and isinstance(v["steps2"], int)


@settings(max_examples=2500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(analyses(), references(), intents)
def test_every_plan_obeys_every_rule_and_is_deterministic(a, r, intent):
    p = plan(a, r, intent_strength=intent)
    assert_hard_rules(p)
    assert plan_violations(p) == []
    assert plan(a, r, intent_strength=intent).to_json() == p.to_json()


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(analyses(), references(), intents,
       st.floats(0.01, 2.0), st.floats(0.01, 0.5), st.floats(0.01, 0.5))
def test_every_safer_retry_obeys_every_rule_and_never_raises_a_value(a, r, intent, c_step, i_step, d_step):
    p = plan(a, r, intent_strength=intent)
    q = safer_retry(p, cfg2_step=c_step, ip2_step=i_step, denoise2_step=d_step, reason="property")
    assert_hard_rules(q)
    assert plan_violations(q) == []
    for name, value in q.values().items():
        assert value <= p.values()[name] + EPS, name
    for name in ("cfg2", "ip2_weight", "denoise2"):
        lowered = getattr(q, name) < getattr(p, name) - EPS
        at_floor = getattr(p, name) <= p.bounds[name][0] + EPS or getattr(q, name) <= p.bounds[name][0] + EPS
        at_global_floor = name == "cfg2" and getattr(q, name) <= 7.0 + EPS
        assert lowered or at_floor or at_global_floor, name
