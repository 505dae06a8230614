"""The Animation Director's plan: the dynamic values for the locked template plus why they are what they are.

Field names of the values equal the policy's value names (cfg1, ip2_weight, ...), so the policy's
node driver map ({node input: plan field}) reads straight off a Plan.
"""

from __future__ import annotations

import copy
import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

from ..policy import PROMPT_FIELDS, VALUE_KINDS, VALUE_NAMES, Policy, default_policy

Case = Literal["single_simple", "single_complex", "multi_object"]
ObjectScale = Literal["small", "medium", "large"]

# M4 Plan Unpack's outputs: (output id, plan field, socket kind, tooltip). Saved workflows link to these
# output names, and scripts/build_workflows.py wires the policy's driver map through them: never rename.
PLAN_UNPACK_VALUES: tuple[tuple[str, str, str, str], ...] = (
    # (output id, plan field, socket kind, tooltip)
    ("ks1_steps", "steps1", "int", "KSampler 1 steps."),
    ("ks1_cfg", "cfg1", "float", "KSampler 1 cfg."),
    ("ks1_denoise", "denoise1", "float", "KSampler 1 denoise."),
    ("ks2_steps", "steps2", "int", "KSampler 2 steps."),
    ("ks2_cfg", "cfg2", "float", "KSampler 2 cfg."),
    ("ks2_denoise", "denoise2", "float", "KSampler 2 denoise."),
    ("union_strength", "union_strength", "float", "ControlNet Union apply strength."),
    ("union_end_percent", "union_end", "float", "ControlNet Union apply end_percent."),
    ("openpose_strength", "pose_strength", "float", "OpenPose apply strength."),
    ("openpose_end_percent", "pose_end", "float", "OpenPose apply end_percent."),
    ("ip1_weight", "ip1_weight", "float", "IP-Adapter for KS1 weight."),
    ("ip1_end_at", "ip1_end_at", "float", "IP-Adapter for KS1 end_at."),
    ("ip2_weight", "ip2_weight", "float", "IP-Adapter for KS2 weight."),
    ("ip2_end_at", "ip2_end_at", "float", "IP-Adapter for KS2 end_at."),
)
PLAN_UNPACK_PROMPTS: tuple[tuple[str, str], ...] = (
    ("ks1_positive", "Stage 1 positive prompt."),
    ("ks1_negative", "Stage 1 negative prompt."),
    ("ks2_positive", "Stage 2 positive prompt."),
    ("ks2_negative", "Stage 2 negative prompt."),
)


def driven_input(plan_field: str, policy: Policy | None = None) -> str:
    """Where the policy's driver map sends a plan field, said for a tooltip (node id, its role, the input)."""
    pol = policy or default_policy()
    for node_id, driver in pol.nodes.items():
        for input_name, field_name in driver.drives.items():
            if field_name == plan_field:
                return f"template node {node_id} ({driver.role}), input {input_name}"
    return "no template node (not in the driver map)"


@dataclass
class Plan:
    """One M4 plan. Floats are plain Python floats, steps plain ints.

    signals: S, R, D, P, H (0..1). bounds: the dynamic [lower, upper] of every value after the
    case profile and the signal modifiers. diagnostics: everything section 8 asks to inspect,
    plus `clamps` (one record per clamp that changed a value). prompts: empty until the Prompt
    Engineer fills ks1_positive / ks1_negative / ks2_positive / ks2_negative.
    """

    case: Case
    object_scale: ObjectScale
    cfg1: float
    cfg2: float
    denoise1: float
    denoise2: float
    steps1: int
    steps2: int
    union_strength: float
    union_end: float
    pose_strength: float
    pose_end: float
    ip1_weight: float
    ip1_end_at: float
    ip2_weight: float
    ip2_end_at: float
    signals: dict[str, float] = field(default_factory=dict)
    bounds: dict[str, list[float]] = field(default_factory=dict)
    diagnostics: dict[str, Any] = field(default_factory=dict)
    prompts: dict[str, str] = field(default_factory=dict)
    is_retry: bool = False
    policy_version: str = ""

    def values(self) -> dict[str, float | int]:
        """The fourteen dynamic values by name."""
        return {name: getattr(self, name) for name in VALUE_NAMES}

    def field_value(self, name: str) -> float | int | str:
        """A value or prompt by its plan field name (what the node driver map refers to)."""
        if name in VALUE_KINDS:
            return getattr(self, name)
        if name in PROMPT_FIELDS:
            if name not in self.prompts:
                raise ValueError(f"plan: prompt {name!r} is not set (run the plan through M4 Prompt Engineer)")
            return self.prompts[name]
        raise ValueError(f"plan: unknown field {name!r}")

    def node_inputs(self, policy: Policy | None = None, *, include_prompts: bool = True) -> dict[str, dict[str, Any]]:
        """{node id: {input name: value}} for the locked template, from the policy's driver map."""
        pol = policy or default_policy()
        out: dict[str, dict[str, Any]] = {}
        for node_id, driver in pol.nodes.items():
            inputs = {}
            for input_name, field_name in driver.drives.items():
                if field_name in PROMPT_FIELDS and not include_prompts:
                    continue
                inputs[input_name] = self.field_value(field_name)
            if inputs:
                out[node_id] = inputs
        return out

    def with_prompts(self, prompts: dict[str, str]) -> Plan:
        """A copy of this plan carrying the four stage prompts."""
        missing = [k for k in PROMPT_FIELDS if not isinstance(prompts.get(k), str)]
        if missing:
            raise ValueError(f"plan prompts: missing or not text: {missing}")
        new = copy.deepcopy(self)
        new.prompts = {k: prompts[k] for k in PROMPT_FIELDS}
        return new

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, allow_nan=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Plan:
        names = {f.name for f in fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"Plan: unknown field(s) {sorted(unknown)}")
        kwargs = copy.deepcopy(dict(data))
        for name, (_, integer) in VALUE_KINDS.items():
            if name in kwargs:
                v = kwargs[name]
                if isinstance(v, bool) or not isinstance(v, int | float):
                    raise ValueError(f"Plan: field {name!r} must be a number, got {v!r}")
                kwargs[name] = int(v) if integer else float(v)
        return cls(**kwargs)

    @classmethod
    def from_json(cls, text: str) -> Plan:
        return cls.from_dict(json.loads(text))
