"""Checks for the pack's own sockets (M4_ANALYSIS, M4_REFERENCE_REPORT, M4_PLAN) that several planning
nodes take: each names the input and says what was expected."""

from __future__ import annotations

from typing import Any

from ..agents.measure.analysis_types import ReferenceReport, VisualAnalysis
from ..agents.planning.plan_types import Plan


def first_analysis(analysis: Any) -> tuple[VisualAnalysis, int]:
    """The Analysis socket carries one VisualAnalysis per batch item: plan from the first."""
    items = analysis if isinstance(analysis, list | tuple) else [analysis]
    if not items:
        raise ValueError("analysis: the analysis list is empty (did the Visual Analyst get an image?)")
    if not isinstance(items[0], VisualAnalysis):
        raise ValueError(f"analysis: expected an M4 Visual Analyst output, got {type(items[0]).__name__}")
    return items[0], len(items)


def reference_input(reference: Any) -> ReferenceReport:
    """The optional Reference Compare report; none (or an empty list) is "no reference"."""
    if reference is None:
        return ReferenceReport.absent()
    if isinstance(reference, list | tuple):
        if not reference:
            return ReferenceReport.absent("the reference report list is empty")
        reference = reference[0]
    if not isinstance(reference, ReferenceReport):
        raise ValueError(f"reference_report: expected an M4 Reference Compare output, got {type(reference).__name__}")
    return reference


def plan_input(plan: Any) -> Plan:
    if not isinstance(plan, Plan):
        raise ValueError(f"plan: expected an M4 plan (from M4 Animation Director), got {type(plan).__name__}")
    return plan
