"""M4PromptEngineer: the Prompt Engineer agent as a ComfyUI node (thin adapter)."""

from __future__ import annotations

from typing import Any

from comfy_api.v0_0_2 import io

from ..agents.planning.chain import write_prompts
from ..agents.planning.plan_types import driven_input
from ..agents.policy import default_policy
from .plan_sockets import first_analysis, plan_input
from .types import CATEGORY, Analysis, Plan


class M4PromptEngineer(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        pol = default_policy()
        return io.Schema(
            node_id="M4PromptEngineer",
            is_output_node=True,  # shows its report on the node even with nothing wired downstream
            display_name="M4 Prompt Engineer",
            category=f"{CATEGORY}/planning",
            description=(
                "Writes the two stage prompts for the locked model (Animagine XL 3.1, Danbooru tags): KS1 "
                "holds structure (pose, proportions, accessories), KS2 does cleanup (line continuity, "
                "polish, anti-artifact negatives, reference style only when the plan says it is safe). "
                "KS2-only style language never reaches KS1. Outputs the plan with the prompts attached "
                "(for M4 Plan Unpack) and the four prompts as text."
            ),
            inputs=[
                Plan.Input("plan", tooltip="From M4 Animation Director."),
                Analysis.Input("analysis", tooltip="From M4 Visual Analyst (the first item is used, like the "
                               "Director). Its subject tags are used when subject_tags is empty."),
                io.String.Input(
                    "subject_tags", default="", multiline=True, optional=True,
                    tooltip="Comma-separated Danbooru tags, e.g. '1girl, character:hatsune miku, "
                    "series:vocaloid, twintails'. 'character:' / 'series:' prefixes place a tag in the model's "
                    "expected order. Empty = the analysis's own tags.",
                ),
            ],
            outputs=[
                Plan.Output("plan_with_prompts", display_name="plan",
                            tooltip="The same plan with the four prompts attached: wire it to M4 Plan "
                            "Unpack to get values and prompts together."),
                io.String.Output("ks1_positive", display_name="ks1_positive",
                                 tooltip=f"Stage 1 positive prompt ({driven_input('ks1_positive', pol)})."),
                io.String.Output("ks1_negative", display_name="ks1_negative",
                                 tooltip=f"Stage 1 negative prompt ({driven_input('ks1_negative', pol)})."),
                io.String.Output("ks2_positive", display_name="ks2_positive",
                                 tooltip=f"Stage 2 positive prompt ({driven_input('ks2_positive', pol)})."),
                io.String.Output("ks2_negative", display_name="ks2_negative",
                                 tooltip=f"Stage 2 negative prompt ({driven_input('ks2_negative', pol)})."),
            ],
        )

    @classmethod
    def execute(cls, plan: Any, analysis: Any, subject_tags: str | None = "") -> io.NodeOutput:
        p = plan_input(plan)
        first, _count = first_analysis(analysis)
        with_prompts, stage = write_prompts(p, first, subject_tags)
        panel = {"kind": "prompts", "title": "M4 prompts", "data": stage.to_dict()}
        return io.NodeOutput(with_prompts, stage.ks1_positive, stage.ks1_negative, stage.ks2_positive,
                             stage.ks2_negative, ui={"m4_panel": [panel]})


NODES = [M4PromptEngineer]
