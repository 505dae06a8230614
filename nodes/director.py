"""M4AnimationDirector and M4PlanUnpack: the Director agent as ComfyUI nodes (thin adapters)."""

from __future__ import annotations

from typing import Any

from comfy_api.v0_0_2 import io

from ..agents.measure.analysis_types import ReferenceReport as ReferenceReportData
from ..agents.measure.analysis_types import VisualAnalysis
from ..agents.planning.animation_director import plan as make_plan
from ..agents.planning.plan_types import PLAN_UNPACK_PROMPTS as _PROMPT_OUTPUTS
from ..agents.planning.plan_types import PLAN_UNPACK_VALUES as _VALUE_OUTPUTS
from ..agents.planning.plan_types import Plan as PlanData
from ..agents.policy import PROMPT_FIELDS, VALUE_NAMES, default_policy
from .types import CATEGORY, Analysis, Plan, ReferenceReport

AUTO_INTENT = -1.0


def first_analysis(analysis: Any) -> tuple[VisualAnalysis, int]:
    """The Analysis socket carries one VisualAnalysis per batch item: plan from the first."""
    items = analysis if isinstance(analysis, list | tuple) else [analysis]
    if not items:
        raise ValueError("analysis: the analysis list is empty (did the Visual Analyst get an image?)")
    if not isinstance(items[0], VisualAnalysis):
        raise ValueError(f"analysis: expected an M4 Visual Analyst output, got {type(items[0]).__name__}")
    return items[0], len(items)


def _reference(reference: Any) -> ReferenceReportData:
    if reference is None:
        return ReferenceReportData.absent()
    if isinstance(reference, list | tuple):
        if not reference:
            return ReferenceReportData.absent("the reference report list is empty")
        reference = reference[0]
    if not isinstance(reference, ReferenceReportData):
        raise ValueError(f"reference_report: expected an M4 Reference Compare output, got {type(reference).__name__}")
    return reference


def plan_panel(p: PlanData, title: str) -> dict[str, Any]:
    """The plan's m4_panel payload: the plan as data, and each value's outer [limits] range (the global
    range web/m4_director.js draws each value's bar over)."""
    pol = default_policy()
    limits = {name: [float(x) for x in pol.value_limits(name)] for name in VALUE_NAMES}
    return {"kind": "plan", "title": title, "data": p.to_dict(), "limits": limits}


def _plan_input(plan: Any) -> PlanData:
    if not isinstance(plan, PlanData):
        raise ValueError(f"plan: expected an M4 plan (from M4 Animation Director), got {type(plan).__name__}")
    return plan


class M4AnimationDirector(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
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
                    tooltip="How hard the prompt should be followed, 0..1 (base CFG = 7.2 + 1.8 x this). "
                    "-1 = derive it from the sketch's structure confidence and the reference reliability.",
                ),
            ],
            outputs=[
                Plan.Output("plan", display_name="plan",
                            tooltip="The full plan (values, signals, bounds, diagnostics) for M4 Prompt "
                            "Engineer and M4 Plan Unpack."),
                io.Float.Output("ks1_cfg", display_name="ks1_cfg", tooltip="KSampler 1 (node 5) cfg."),
                io.Float.Output("ks2_cfg", display_name="ks2_cfg",
                                tooltip="KSampler 2 (node 55) cfg, never above ks1_cfg."),
                io.Float.Output("ks1_denoise", display_name="ks1_denoise", tooltip="KSampler 1 (node 5) denoise."),
                io.Float.Output("ks2_denoise", display_name="ks2_denoise",
                                tooltip="KSampler 2 (node 55) denoise, at most 0.60."),
                io.Float.Output("ip1_weight", display_name="ip1_weight",
                                tooltip="IP-Adapter for KS1 (node 66) weight."),
                io.Float.Output("ip2_weight", display_name="ip2_weight",
                                tooltip="IP-Adapter for KS2 (node 105) weight, at least 0.10 under "
                                "ip1_weight and at most 0.55."),
            ],
        )

    @classmethod
    def execute(cls, analysis: Any, reference_report: Any = None,
                intent_strength: float | None = AUTO_INTENT) -> io.NodeOutput:
        first, count = first_analysis(analysis)
        intent = None if intent_strength is None or intent_strength < 0 else float(intent_strength)
        p = make_plan(first, _reference(reference_report), intent_strength=intent)
        if count > 1:
            p.diagnostics["warnings"].append(f"analysis batch of {count}: planned from the first image only")
        panel = plan_panel(p, "M4 plan")
        return io.NodeOutput(p, p.cfg1, p.cfg2, p.denoise1, p.denoise2, p.ip1_weight, p.ip2_weight,
                             ui={"m4_panel": [panel]})


_NO_PROMPTS = " Empty when the plan did not pass through M4 Prompt Engineer."


class M4PlanUnpack(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        outputs: list[io.Output] = []
        for out_id, _field, kind, tip in _VALUE_OUTPUTS:
            socket = io.Int if kind == "int" else io.Float
            outputs.append(socket.Output(out_id, display_name=out_id, tooltip=tip))
        outputs += [io.String.Output(out_id, display_name=out_id,
                                     tooltip=tip + _NO_PROMPTS) for out_id, tip in _PROMPT_OUTPUTS]
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
        p = _plan_input(plan)
        values = [getattr(p, field_name) for _id, field_name, _k, _t in _VALUE_OUTPUTS]
        prompts = [p.prompts.get(name, "") for name in PROMPT_FIELDS]
        return io.NodeOutput(*values, *prompts, ui={"m4_panel": [plan_panel(p, "M4 plan (unpacked)")]})


NODES = [M4AnimationDirector, M4PlanUnpack]
