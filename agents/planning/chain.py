"""The one planning chain: analyse -> compare -> direct -> prompts (seed 004 section 1, steps 2-5).

Every route plans through these functions: `./m4 plan` and the runner call `plan_pair`; the planning
nodes are the same steps one node each (the Visual Analyst and Reference Compare nodes call the
measure family's analyse/compare, the Director node `direct`, the Prompt Engineer node `write_prompts`).
"""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..measure.analysis_types import ReferenceReport, VisualAnalysis
from ..measure.reference_compare import ImageMeasures, compare
from ..measure.visual_analyst import analyse
from ..policy import Policy, default_policy
from .animation_director import plan as make_plan
from .plan_types import Plan
from .prompt_engineer import StagePrompts, build_prompts, parse_tags


@dataclass(frozen=True)
class PlannedPair:
    """One request planned: the two measurement reports, the plan (prompts attached) and the prompts."""

    analysis: VisualAnalysis
    reference: ReferenceReport
    plan: Plan
    prompts: StagePrompts

    def reports(self) -> dict[str, dict[str, Any]]:
        """The four reports as the nodes' panels carry them (analysis, reference, plan, prompts)."""
        return {"analysis": self.analysis.to_dict(), "reference": self.reference.to_dict(),
                "plan": self.plan.to_dict(), "prompts": self.prompts.to_dict()}


def direct(analysis: VisualAnalysis, reference: ReferenceReport, policy: Policy | None = None, *,
           intent_strength: float | None = None) -> Plan:
    """The Animation Director's step: the plan's values under the hard rules, no prompts yet."""
    return make_plan(analysis, reference, policy or default_policy(), intent_strength=intent_strength)


def write_prompts(plan: Plan, analysis: VisualAnalysis, tags: str | None,
                  policy: Policy | None = None) -> tuple[Plan, StagePrompts]:
    """The Prompt Engineer's step: (the plan with its four prompts attached, the prompts). Blank or
    missing tags leave the analysis's own subject tags in charge."""
    subject = parse_tags(tags) if tags and tags.strip() else None
    stage = build_prompts(plan, analysis, subject, policy or default_policy())
    return plan.with_prompts(stage.prompts()), stage


def plan_pair(sketch: np.ndarray, reference: np.ndarray | ImageMeasures | Future[ImageMeasures] | None, *,
              name: str, tags: str = "", policy: Policy | None = None) -> PlannedPair:
    """One sketch (pixels) and an optional reference (pixels, its measures, or a future of them, being
    measured on another thread meanwhile) through the whole chain."""
    pol = policy or default_policy()
    text = tags or None
    analysis = analyse(sketch, name=name, text_tags=text)
    measured = reference.result() if isinstance(reference, Future) else reference
    report = compare(sketch, measured, sketch_tags=text)
    planned, stage = write_prompts(direct(analysis, report, pol), analysis, tags, pol)
    return PlannedPair(analysis, report, planned, stage)
