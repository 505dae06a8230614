"""Director inputs made safe, the case classification and the S/R/D/P signals (seed 004 sections 12, 14).

NaN / infinite signals become the policy's conservative value and finite out-of-range ones are
clipped into 0..1; each substitution is recorded, never propagated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

from ..measure.analysis_types import ReferenceReport, VisualAnalysis
from ..measure.unit_interval import clip01
from ..policy import Policy
from .plan_types import Case, ObjectScale

ReferenceMode = Literal["off", "guarded", "style", "identity"]


class PlanInputError(ValueError):
    """An analysis or reference the Director cannot plan from (wrong type, non-numeric field)."""


@dataclass
class DirectorInputs:
    """The signals the Director reads, all finite; `sanitised` lists every substitution made."""

    line_quality_score: float
    construction_lines: float
    broken_lines: float
    complexity_score: float
    subject_scale: float
    anatomy_risk_score: float
    object_count: int
    empty: bool
    reference_present: bool
    similarity: float
    conflict_penalty: float
    style_distance: float
    colored: bool
    accessory_conflict: float
    intent_strength: float | None
    sanitised: list[dict[str, Any]] = field(default_factory=list)


def _unit(obj: Any, owner: str, name: str, policy: Policy, log: list[dict[str, Any]]) -> float:
    value = getattr(obj, name, None)
    return _unit_value(value, f"{owner}.{name}", policy.sanitise[name], log)


def _unit_value(value: Any, label: str, conservative: float, log: list[dict[str, Any]]) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PlanInputError(f"{label}: expected a number in 0..1, got {value!r}")
    x = float(value)
    if not math.isfinite(x):
        log.append({"field": label, "before": str(x), "after": conservative,
                    "reason": "not a finite number: replaced by the policy's conservative value"})
        return conservative
    if not 0.0 <= x <= 1.0:
        log.append({"field": label, "before": x, "after": clip01(x), "reason": "outside 0..1: clipped"})
        return clip01(x)
    return x


def _flag(obj: Any, owner: str, name: str) -> bool:
    value = getattr(obj, name, None)
    if not isinstance(value, bool):
        raise PlanInputError(f"{owner}.{name}: expected true/false, got {value!r}")
    return value


def sanitise_inputs(analysis: VisualAnalysis, reference: ReferenceReport, policy: Policy,
                    intent_strength: float | None) -> DirectorInputs:
    if not isinstance(analysis, VisualAnalysis):
        raise PlanInputError(f"analysis: expected a VisualAnalysis, got {type(analysis).__name__}")
    if not isinstance(reference, ReferenceReport):
        raise PlanInputError(f"reference: expected a ReferenceReport, got {type(reference).__name__}")
    log: list[dict[str, Any]] = []
    a = {n: _unit(analysis, "analysis", n, policy, log) for n in (
        "line_quality_score", "construction_lines", "broken_lines", "complexity_score", "subject_scale",
        "anatomy_risk_score")}
    count = analysis.object_count
    if isinstance(count, bool) or not isinstance(count, int | float):
        raise PlanInputError(f"analysis.object_count: expected a whole number, got {count!r}")
    if not math.isfinite(count):
        log.append({"field": "analysis.object_count", "before": str(count), "after": 1,
                    "reason": "not a finite number: treated as one object"})
        count = 1
    elif count < 0 or count != int(count):
        fixed = max(0, int(round(count)))
        log.append({"field": "analysis.object_count", "before": count, "after": fixed,
                    "reason": "not a non-negative whole number: rounded and clipped"})
        count = fixed
    present = _flag(reference, "reference", "present")
    r = {n: _unit(reference, "reference", n, policy, log) for n in (
        "similarity", "conflict_penalty", "style_distance", "accessory_conflict")}
    intent = None
    if intent_strength is not None:
        intent = _unit_value(intent_strength, "intent_strength", policy.sanitise["intent_strength"], log)
    return DirectorInputs(
        **a, object_count=int(count), empty=_flag(analysis, "analysis", "empty"), reference_present=present,
        **r, colored=_flag(reference, "reference", "colored"), intent_strength=intent, sanitised=log,
    )


def classify(inputs: DirectorInputs, policy: Policy) -> tuple[Case, ObjectScale]:
    """Step 1: (case, object scale)."""
    c = policy.classify
    case: Case
    scale: ObjectScale
    if inputs.object_count >= c["multi_object_min_count"]:
        case = "multi_object"
    elif (inputs.complexity_score >= c["complex_threshold"]
          or inputs.construction_lines >= c["construction_threshold"]):
        case = "single_complex"
    else:
        case = "single_simple"
    if inputs.subject_scale < c["small_below"]:
        scale = "small"
    elif inputs.subject_scale > c["large_above"]:
        scale = "large"
    else:
        scale = "medium"
    return case, scale


@dataclass
class Signals:
    S: float
    R: float
    D: float
    P: float
    intent: float
    influence: float
    reference_mode: ReferenceMode

    def driver(self, name: str) -> float:
        """A raw-value driver by its policy name: a signal, or inv_<signal> for 1 - signal."""
        if name.startswith("inv_"):
            return 1.0 - float(getattr(self, name[4:]))
        return float(getattr(self, name))


def reference_mode(inputs: DirectorInputs, r: float, policy: Policy) -> ReferenceMode:
    m = policy.reference_modes
    conflict = inputs.conflict_penalty
    if not inputs.reference_present or r < m["off_below"]:
        return "off"
    if conflict >= m["guarded_conflict"] or inputs.colored:
        return "guarded"
    if r >= m["identity_min_r"] and conflict < m["identity_max_conflict"]:
        return "identity"
    if conflict < m["style_max_conflict"]:
        return "style"
    return "guarded"


def compute_signals(inputs: DirectorInputs, case: str, policy: Policy) -> Signals:
    """Step 4 (signal half): S, R, D, P, intent_strength, reference_mode and _influence_scalar."""
    w = policy.signals
    s = clip01(1.0 - (w["s_construction"] * inputs.construction_lines + w["s_broken"] * inputs.broken_lines
                      + w["s_line_quality"] * (1.0 - inputs.line_quality_score)))
    if inputs.reference_present:
        r = clip01(inputs.similarity * (1.0 - inputs.conflict_penalty))
        d = inputs.style_distance
    else:
        r, d = 0.0, 0.0
    p = clip01(inputs.anatomy_risk_score + policy.cases[case].pose_lock_bias)
    if inputs.intent_strength is not None:
        intent = inputs.intent_strength
    else:
        i = policy.intent
        intent = clip01(i["offset"] + i["s_weight"] * s + i["r_weight"] * r)
    mode = reference_mode(inputs, r, policy)
    influence = clip01(r * policy.reference_modes[f"factor_{mode}"])
    return Signals(S=s, R=r, D=d, P=p, intent=intent, influence=influence, reference_mode=mode)


def hallucination_risk(cfg2: float, denoise2: float, ip2: float, conflict: float, policy: Policy) -> float:
    """H from what KS2 will run: its cfg, denoise and IP weight, and the reference conflict."""
    w, c, h = policy.signals, policy.cfg, policy.hard_rules
    cfg_part = clip01((cfg2 - c["global_min"]) / (c["global_max"] - c["global_min"]))
    den_part = clip01(denoise2 / h["denoise2_max"]) if h["denoise2_max"] > 0 else 1.0
    ip_part = clip01(ip2 / h["ip2_abs_max"]) if h["ip2_abs_max"] > 0 else 1.0
    return clip01(w["h_cfg2"] * cfg_part + w["h_denoise2"] * den_part + w["h_ip2"] * ip_part
                  + w["h_conflict"] * conflict)
