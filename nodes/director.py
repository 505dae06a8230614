"""M4AnimationDirector and M4PlanUnpack: the Director agent as ComfyUI nodes (thin adapters)."""

from __future__ import annotations

from typing import Any

from comfy_api.v0_0_2 import io

from ..agents.planning.chain import direct
from ..agents.planning.plan_types import PLAN_UNPACK_PROMPTS as _PROMPT_OUTPUTS
from ..agents.planning.plan_types import PLAN_UNPACK_VALUES as _VALUE_OUTPUTS
from ..agents.planning.plan_types import Plan as PlanData
from ..agents.planning.plan_types import driven_input
from ..agents.policy import PROMPT_FIELDS, VALUE_NAMES, Policy, default_policy
from .plan_sockets import first_analysis, plan_input, reference_input
from .policy_overlay import node_policy, overlay_fingerprint
from .types import CATEGORY, Analysis, Plan, ReferenceReport

AUTO_INTENT = -1.0


def _tooltips(pol: Policy) -> dict[str, str]:
    """Tooltips that state a policy number say the policy's number (never prose that could drift)."""
    cfg, hard = pol.cfg, pol.hard_rules

    def where(field: str) -> str:
        return driven_input(field, pol)

    return {
        "intent": f"How hard the prompt should be followed, 0..1 (base CFG = {cfg['base_offset']:g} + "
                  f"{cfg['base_span']:g} x this). -1 = derive it from the sketch's structure confidence and the "
                  "reference reliability.",
        "ks1_cfg": f"KSampler 1 cfg ({where('cfg1')}).",
        "ks2_cfg": f"KSampler 2 cfg ({where('cfg2')}), never above ks1_cfg.",
        "ks1_denoise": f"KSampler 1 denoise ({where('denoise1')}).",
        "ks2_denoise": f"KSampler 2 denoise ({where('denoise2')}), at most {hard['denoise2_max']:.2f}.",
        "ip1_weight": f"IP-Adapter for KS1 weight ({where('ip1_weight')}).",
        "ip2_weight": f"IP-Adapter for KS2 weight ({where('ip2_weight')}), at least {hard['ip_gap']:.2f} under "
                      f"ip1_weight and at most {hard['ip2_abs_max']:.2f}.",
    }


def plan_panel(p: PlanData, title: str, policy: Policy | None = None) -> dict[str, Any]:
    """The plan's m4_panel payload: the plan as data (the warnings first when there are any: inputs the
    Director could not trust, an empty sketch), and each value's outer [limits] range (the global range
    web/m4_director.js draws each value's bar over)."""
    pol = policy or default_policy()
    limits = {name: [float(x) for x in pol.value_limits(name)] for name in VALUE_NAMES}
    warnings = list(p.diagnostics.get("warnings") or [])
    data = {"warnings": warnings, **p.to_dict()} if warnings else p.to_dict()
    title = f"{title}: {len(warnings)} warning(s)" if warnings else title
    return {"kind": "plan", "title": title, "data": data, "limits": limits}


class M4AnimationDirector(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        tips = _tooltips(default_policy())
        return io.Schema(
            node_id="M4AnimationDirector",
            is_output_node=True,  # shows its report on the node even with nothing wired downstream
            display_name="M4 Animation Director",
            category=f"{CATEGORY}/planning",
            description=(
                "Turns the sketch analysis and the reference report into the M4 plan: case and object "
                "scale, the S/R/D/P/H signals, both KSamplers' cfg/denoise/steps, ControlNet Union and "
                "OpenPose strength/end, and the two IP-Adapter weights/end points, with every hard "
                "safety rule enforced and every clamp explained in the diagnostics panel."
            ),
            inputs=[
                Analysis.Input("analysis", tooltip="From M4 Visual Analyst. With a batch, the first image is planned."),
                ReferenceReport.Input(
                    "reference_report", optional=True,
                    tooltip="From M4 Reference Compare. Leave unconnected when there is no style reference: the "
                    "IP-Adapters then stay at their lowest weights.",
                ),
                io.Float.Input(
                    "intent_strength", default=AUTO_INTENT, min=AUTO_INTENT, max=1.0, step=0.01, optional=True,
                    tooltip=tips["intent"],
                ),
            ],
            outputs=[
                Plan.Output("plan", display_name="plan",
                            tooltip="The full plan (values, signals, bounds, diagnostics) for M4 Prompt "
                            "Engineer and M4 Plan Unpack."),
                io.Float.Output("ks1_cfg", display_name="ks1_cfg", tooltip=tips["ks1_cfg"]),
                io.Float.Output("ks2_cfg", display_name="ks2_cfg", tooltip=tips["ks2_cfg"]),
                io.Float.Output("ks1_denoise", display_name="ks1_denoise", tooltip=tips["ks1_denoise"]),
                io.Float.Output("ks2_denoise", display_name="ks2_denoise", tooltip=tips["ks2_denoise"]),
                io.Float.Output("ip1_weight", display_name="ip1_weight", tooltip=tips["ip1_weight"]),
                io.Float.Output("ip2_weight", display_name="ip2_weight", tooltip=tips["ip2_weight"]),
            ],
        )

    @classmethod
    def fingerprint_inputs(cls, **_inputs: Any) -> str:
        """A new calibrated overlay re-plans: ComfyUI would otherwise serve the plan cached under the old one."""
        return overlay_fingerprint()

    @classmethod
    def execute(cls, analysis: Any, reference_report: Any = None,
                intent_strength: float | None = AUTO_INTENT) -> io.NodeOutput:
        first, count = first_analysis(analysis)
        intent = None if intent_strength is None or intent_strength < 0 else float(intent_strength)
        policy, overlay_note = node_policy()  # the calibrated overlay in the user folder, when there is one
        p = direct(first, reference_input(reference_report), policy, intent_strength=intent)
        if overlay_note is not None:
            p.diagnostics["policy_overlay"] = overlay_note
        if count > 1:
            p.diagnostics["warnings"].append(f"analysis batch of {count}: planned from the first image only")
        panel = plan_panel(p, "M4 plan", policy)
        return io.NodeOutput(p, p.cfg1, p.cfg2, p.denoise1, p.denoise2, p.ip1_weight, p.ip2_weight,
                             ui={"m4_panel": [panel]})


_NO_PROMPTS = " Empty when the plan did not pass through M4 Prompt Engineer."


class M4PlanUnpack(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        pol = default_policy()
        outputs: list[io.Output] = []
        for out_id, field_name, kind, tip in _VALUE_OUTPUTS:
            socket = io.Int if kind == "int" else io.Float
            outputs.append(socket.Output(out_id, display_name=out_id,
                                         tooltip=f"{tip} Feeds {driven_input(field_name, pol)}."))
        outputs += [io.String.Output(out_id, display_name=out_id,
                                     tooltip=f"{tip} Feeds {driven_input(out_id, pol)}.{_NO_PROMPTS}")
                    for out_id, tip in _PROMPT_OUTPUTS]
        return io.Schema(
            node_id="M4PlanUnpack",
            display_name="M4 Plan Unpack",
            category=f"{CATEGORY}/planning",
            description=(
                "Splits an M4 plan into the individual values the locked template's nodes take: steps/cfg/"
                "denoise of both KSamplers, ControlNet Union and OpenPose strength/end_percent, both "
                "IP-Adapters' weight/end_at, and the four stage prompts (carried by the plan once it has "
                "passed through M4 Prompt Engineer)."
            ),
            inputs=[
                Plan.Input("plan", tooltip="From M4 Prompt Engineer (values + prompts) or M4 Animation Director "
                           "(values only; the prompt outputs are then empty)."),
            ],
            outputs=outputs,
        )

    @classmethod
    def execute(cls, plan: Any) -> io.NodeOutput:
        p = plan_input(plan)
        values = [getattr(p, field_name) for _id, field_name, _k, _t in _VALUE_OUTPUTS]
        prompts = [p.prompts.get(name, "") for name in PROMPT_FIELDS]
        return io.NodeOutput(*values, *prompts, ui={"m4_panel": [plan_panel(p, "M4 plan (unpacked)")]})


NODES = [M4AnimationDirector, M4PlanUnpack]
