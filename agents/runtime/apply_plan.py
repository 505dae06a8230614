"""Put a plan into an API-format M4 template by the policy's node driver map (seed 004 section 13).

The driver map in m4_policy.toml is the one source: this layer writes values by it, and the UI
workflows wire M4 Plan Unpack's outputs by it. Only the driven inputs change; a template that
lacks a driven node or input fails with a message naming the node id and the input.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from ..planning.plan_types import PLAN_UNPACK_PROMPTS, PLAN_UNPACK_VALUES, Plan
from ..policy import Policy, default_policy

Workflow = dict[str, dict[str, Any]]


class TemplateError(ValueError):
    """A template that does not match the node driver map; the message names the node and input."""


def load_template(path: str | Path) -> Workflow:
    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except FileNotFoundError:
        raise TemplateError(f"template not found: {p}") from None
    except json.JSONDecodeError as exc:
        raise TemplateError(f"template {p.name} is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) and "class_type" in v for v in data.values()):
        raise TemplateError(f"template {p.name} is not an API-format workflow (every node needs a class_type)")
    return data


def check_template(template: Workflow, policy: Policy | None = None) -> None:
    """Every driven node exists with the expected class_type and a literal value on every driven input."""
    pol = policy or default_policy()
    for node_id, driver in pol.nodes.items():
        node = template.get(node_id)
        if node is None:
            raise TemplateError(f"template node '{node_id}' ({driver.role}) is missing")
        if node.get("class_type") != driver.class_type:
            raise TemplateError(
                f"template node '{node_id}' ({driver.role}): class_type is {node.get('class_type')!r}, "
                f"expected {driver.class_type!r}"
            )
        inputs = node.get("inputs", {})
        for input_name in driver.drives:
            if input_name not in inputs:
                raise TemplateError(f"template node '{node_id}' ({driver.class_type}): input '{input_name}' is missing")
            if isinstance(inputs[input_name], list):
                raise TemplateError(
                    f"template node '{node_id}' ({driver.class_type}): input '{input_name}' is a link; "
                    "the plan can only set literal values"
                )


def apply_plan(template: Workflow, plan: Plan, policy: Policy | None = None, *,
               include_prompts: bool = True) -> Workflow:
    """A copy of the template with the plan's values in the driven inputs (the template is untouched)."""
    pol = policy or default_policy()
    check_template(template, pol)
    out = copy.deepcopy(template)
    for node_id, values in plan.node_inputs(pol, include_prompts=include_prompts).items():
        out[node_id]["inputs"].update(values)
    return out


def template_diff(before: Workflow, after: Workflow) -> list[tuple[str, str, Any, Any]]:
    """(node id, input or '<node>'/'class_type', before, after) for every difference."""
    diffs: list[tuple[str, str, Any, Any]] = []
    for node_id in sorted(set(before) | set(after), key=str):
        a, b = before.get(node_id), after.get(node_id)
        if a is None or b is None:
            diffs.append((node_id, "<node>", a is not None, b is not None))
            continue
        if a.get("class_type") != b.get("class_type"):
            diffs.append((node_id, "class_type", a.get("class_type"), b.get("class_type")))
        ai, bi = a.get("inputs", {}), b.get("inputs", {})
        for name in sorted(set(ai) | set(bi)):
            if ai.get(name, "<absent>") != bi.get(name, "<absent>"):
                diffs.append((node_id, name, ai.get(name, "<absent>"), bi.get(name, "<absent>")))
    return diffs


# Node ids of the planning nodes wire_planning adds (outside the seed's ids and the adaptive 110/111).
PLANNING_NODES = {"analyst": "200", "compare": "201", "director": "202", "prompts": "203", "unpack": "204"}


def wire_planning(template: Workflow, policy: Policy | None = None, *, sketch_node: str, reference_node: str,
                  tags: str = "") -> Workflow:
    """The template with the M4 agent nodes planning inside the graph: every driven input becomes a
    link from M4 Plan Unpack (the API twin of the drag-and-drop preset), so the server does the analysis.

    The Director's and Prompt Engineer's reports come back in /history (their m4_panel) for the log.
    """
    pol = policy or default_policy()
    check_template(template, pol)
    for node_id, role in ((sketch_node, "sketch"), (reference_node, "reference")):
        if template.get(node_id, {}).get("class_type") != "LoadImage":
            raise TemplateError(f"template node '{node_id}' ({role}): expected a LoadImage node")
    taken = sorted(set(PLANNING_NODES.values()) & set(template))
    if taken:
        raise TemplateError(f"template nodes {taken} already exist: they are the planning nodes' ids")
    ids = PLANNING_NODES
    out = copy.deepcopy(template)
    out[ids["analyst"]] = {"class_type": "M4VisualAnalyst",
                           "inputs": {"image": [sketch_node, 0], "subject_tags": tags}}
    out[ids["compare"]] = {"class_type": "M4ReferenceCompare",
                           "inputs": {"sketch": [sketch_node, 0], "reference": [reference_node, 0],
                                      "sketch_tags": tags}}
    out[ids["director"]] = {"class_type": "M4AnimationDirector",
                            "inputs": {"analysis": [ids["analyst"], 0], "reference_report": [ids["compare"], 0]}}
    out[ids["prompts"]] = {"class_type": "M4PromptEngineer",
                           "inputs": {"plan": [ids["director"], 0], "analysis": [ids["analyst"], 0],
                                      "subject_tags": tags}}
    out[ids["unpack"]] = {"class_type": "M4PlanUnpack", "inputs": {"plan": [ids["prompts"], 0]}}
    slot = {plan_field: i for i, (_id, plan_field, _kind, _tip) in enumerate(PLAN_UNPACK_VALUES)}
    slot.update({out_id: len(PLAN_UNPACK_VALUES) + i for i, (out_id, _tip) in enumerate(PLAN_UNPACK_PROMPTS)})
    for node_id, driver in pol.nodes.items():
        for input_name, plan_field in driver.drives.items():
            out[node_id]["inputs"][input_name] = [ids["unpack"], slot[plan_field]]
    return out


def planning_reports(entry: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The four reports a wire_planning graph returns in /history (the nodes' m4_panel payloads)."""
    outputs = entry.get("outputs") or {}

    def report(node: str, kind: str) -> dict[str, Any]:
        for panel in (outputs.get(node) or {}).get("m4_panel") or []:
            if panel.get("kind") == kind:
                return panel.get("data") or {}
        raise TemplateError(f"node '{node}' returned no '{kind}' report in /history")

    return {"analysis": report(PLANNING_NODES["analyst"], "analysis"),
            "reference": report(PLANNING_NODES["compare"], "reference"),
            "plan": report(PLANNING_NODES["director"], "plan"),
            "prompts": report(PLANNING_NODES["prompts"], "prompts")}


def plan_from_reports(reports: dict[str, dict[str, Any]]) -> Plan:
    """The plan with its prompts, rebuilt from planning_reports()."""
    prompts = reports["prompts"]
    plan = Plan.from_dict(reports["plan"])
    return plan.with_prompts({out_id: prompts.get(out_id) for out_id, _tip in PLAN_UNPACK_PROMPTS})
