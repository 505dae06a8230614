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


def set_load_images(workflow: Workflow, policy: Policy | None = None, *, sketch: str,
                    reference: str | None) -> Workflow:
    """A copy with the template contract's LoadImage nodes (policy [template.images]) pointed at uploaded
    images; reference None leaves the reference node as it is (a planning graph without one has none)."""
    pol = policy or default_policy()
    out = {k: dict(v, inputs=dict(v.get("inputs", {}))) for k, v in workflow.items()}
    for role, name in (("sketch", sketch), ("reference", reference)):
        if name is None:
            continue
        node_id = pol.template_contract.images[role]
        node = out.get(node_id)
        if node is None or node.get("class_type") != "LoadImage":
            raise TemplateError(f"template node '{node_id}' ({role}): expected a LoadImage node, "
                                f"found {None if node is None else node.get('class_type')!r}")
        node["inputs"]["image"] = name
    return out


def _agent_nodes(ids: dict[str, str], sketch_node: str, reference_node: str | None, tags: str) -> Workflow:
    """The four planning agents as API nodes reading the sketch (and reference) LoadImage nodes."""
    compare: dict[str, Any] = {"sketch": [sketch_node, 0], "sketch_tags": tags}
    if reference_node is not None:
        compare["reference"] = [reference_node, 0]
    return {
        ids["analyst"]: {"class_type": "M4VisualAnalyst", "inputs": {"image": [sketch_node, 0], "subject_tags": tags}},
        ids["compare"]: {"class_type": "M4ReferenceCompare", "inputs": compare},
        ids["director"]: {"class_type": "M4AnimationDirector",
                          "inputs": {"analysis": [ids["analyst"], 0], "reference_report": [ids["compare"], 0]}},
        ids["prompts"]: {"class_type": "M4PromptEngineer",
                         "inputs": {"plan": [ids["director"], 0], "analysis": [ids["analyst"], 0],
                                    "subject_tags": tags}},
    }


def planning_graph(policy: Policy | None = None, *, sketch: str, reference: str | None, tags: str = "") -> Workflow:
    """The planning graph alone (LoadImage -> the four agents), with the template contract's node ids:
    `./m4 demo` plans through it; planning_reports() reads its answer."""
    pol = policy or default_policy()
    images, ids = pol.template_contract.images, dict(pol.template_contract.planning)
    wf: Workflow = {images["sketch"]: {"class_type": "LoadImage", "inputs": {"image": sketch}}}
    if reference is not None:
        wf[images["reference"]] = {"class_type": "LoadImage", "inputs": {"image": reference}}
    wf.update(_agent_nodes(ids, images["sketch"], images["reference"] if reference is not None else None, tags))
    return wf


def wire_planning(template: Workflow, policy: Policy | None = None, *, tags: str = "") -> Workflow:
    """The template with the M4 agent nodes planning inside the graph: every driven input becomes a
    link from M4 Plan Unpack (the API twin of the drag-and-drop preset), so the server does the analysis.

    The Director's and Prompt Engineer's reports come back in /history (their m4_panel) for the log.
    """
    pol = policy or default_policy()
    check_template(template, pol)
    images, ids = pol.template_contract.images, dict(pol.template_contract.planning)
    for role, node_id in images.items():
        if template.get(node_id, {}).get("class_type") != "LoadImage":
            raise TemplateError(f"template node '{node_id}' ({role}): expected a LoadImage node")
    taken = sorted(set(ids.values()) & set(template))
    if taken:
        raise TemplateError(f"template nodes {taken} already exist: they are the planning nodes' ids")
    out = copy.deepcopy(template)
    out.update(_agent_nodes(ids, images["sketch"], images["reference"], tags))
    out[ids["unpack"]] = {"class_type": "M4PlanUnpack", "inputs": {"plan": [ids["prompts"], 0]}}
    slot = {plan_field: i for i, (_id, plan_field, _kind, _tip) in enumerate(PLAN_UNPACK_VALUES)}
    slot.update({out_id: len(PLAN_UNPACK_VALUES) + i for i, (out_id, _tip) in enumerate(PLAN_UNPACK_PROMPTS)})
    for node_id, driver in pol.nodes.items():
        for input_name, plan_field in driver.drives.items():
            out[node_id]["inputs"][input_name] = [ids["unpack"], slot[plan_field]]
    return out


def planning_reports(entry: dict[str, Any], policy: Policy | None = None) -> dict[str, dict[str, Any]]:
    """The four reports a planning_graph / wire_planning graph returns in /history (the nodes' m4_panel
    payloads)."""
    ids = (policy or default_policy()).template_contract.planning
    outputs = entry.get("outputs") or {}

    def report(node: str, kind: str) -> dict[str, Any]:
        for panel in (outputs.get(node) or {}).get("m4_panel") or []:
            if panel.get("kind") == kind:
                return panel.get("data") or {}
        raise TemplateError(f"node '{node}' returned no '{kind}' report in /history")

    return {"analysis": report(ids["analyst"], "analysis"),
            "reference": report(ids["compare"], "reference"),
            "plan": report(ids["director"], "plan"),
            "prompts": report(ids["prompts"], "prompts")}


def plan_from_reports(reports: dict[str, dict[str, Any]]) -> Plan:
    """The plan with its prompts, rebuilt from planning_reports()."""
    prompts = reports["prompts"]
    plan = Plan.from_dict(reports["plan"])
    return plan.with_prompts({out_id: str(prompts.get(out_id) or "") for out_id, _tip in PLAN_UNPACK_PROMPTS})
