"""The apply layer: the locked template matches the policy's driver map, and a plan changes only driven values."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from agents.measure.analysis_types import ReferenceReport
from agents.planning.animation_director import plan
from agents.planning.prompt_engineer import build_prompts
from agents.policy import default_policy
from agents.runtime.apply_plan import TemplateError, apply_plan, check_template, load_template, template_diff
from host.records import make_analysis

REPO = Path(__file__).resolve().parents[2]
POLICY = default_policy()
TEMPLATES = sorted((REPO / "workflows" / "api").glob("*_Api.json"))


def _plan():
    a = make_analysis(line_quality="messy", line_quality_score=0.3, construction_lines=0.5, broken_lines=0.4,
                      stroke_width_consistency=0.5, complexity="complex", complexity_score=0.7, subject_scale=0.8,
                      anatomy_risk="high", anatomy_risk_score=0.8, subject_tags=["1girl"])
    p = plan(a, ReferenceReport.absent())
    prompts = build_prompts(p, a, ["1girl"])
    return p.with_prompts(prompts.prompts())


def test_locked_template_is_the_policy_template() -> None:
    assert (REPO / POLICY.template).is_file()
    assert REPO / POLICY.template in TEMPLATES


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.name)
def test_template_matches_the_driver_map(path: Path) -> None:
    template = load_template(path)
    check_template(template, POLICY)  # raises with the node id on any mismatch
    for node_id, driver in POLICY.nodes.items():
        assert template[node_id]["class_type"] == driver.class_type
        assert set(driver.drives) <= set(template[node_id]["inputs"])


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.name)
def test_applying_a_plan_changes_only_driven_values(path: Path) -> None:
    template = load_template(path)
    before = copy.deepcopy(template)
    p = _plan()
    applied = apply_plan(template, p, POLICY)
    assert template == before, "apply_plan must not modify its input"
    driven = {(nid, name) for nid, d in POLICY.nodes.items() for name in d.drives}
    diffs = template_diff(template, applied)
    assert diffs, "the plan should change at least one value"
    assert {(nid, name) for nid, name, _, _ in diffs} <= driven
    # ... and every driven input now holds the plan's value.
    for node_id, driver in POLICY.nodes.items():
        for input_name, field in driver.drives.items():
            assert applied[node_id]["inputs"][input_name] == p.field_value(field)
    assert set(applied) == set(template)
    assert all(applied[k]["class_type"] == template[k]["class_type"] for k in template)


def test_missing_node_is_named() -> None:
    template = load_template(REPO / POLICY.template)
    del template["104"]
    with pytest.raises(TemplateError, match="'104'"):
        apply_plan(template, _plan(), POLICY)


def test_renamed_input_is_named() -> None:
    template = load_template(REPO / POLICY.template)
    template["66"]["inputs"]["end"] = template["66"]["inputs"].pop("end_at")
    with pytest.raises(TemplateError, match=r"'66'.*'end_at'"):
        apply_plan(template, _plan(), POLICY)


def test_wrong_class_is_named() -> None:
    template = load_template(REPO / POLICY.template)
    template["55"]["class_type"] = "KSamplerAdvanced"
    with pytest.raises(TemplateError, match="'55'.*KSamplerAdvanced"):
        check_template(template, POLICY)


def test_linked_driven_input_is_refused() -> None:
    template = load_template(REPO / POLICY.template)
    template["5"]["inputs"]["cfg"] = ["99", 0]
    with pytest.raises(TemplateError, match="'5'.*'cfg'.*link"):
        check_template(template, POLICY)


def test_not_api_format_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "ui.json"
    bad.write_text('{"last_node_id": 3, "nodes": []}')
    with pytest.raises(TemplateError, match="API-format"):
        load_template(bad)


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.name)
def test_wire_planning_feeds_every_driven_input_from_plan_unpack(path: Path) -> None:
    from agents.planning.plan_types import PLAN_UNPACK_PROMPTS, PLAN_UNPACK_VALUES
    from agents.runtime.apply_plan import wire_planning

    PLANNING_NODES = POLICY.template_contract.planning
    template = load_template(path)
    wired = wire_planning(template, POLICY, tags="1girl")
    outputs = [field for _id, field, _k, _t in PLAN_UNPACK_VALUES] + [out_id for out_id, _t in PLAN_UNPACK_PROMPTS]
    unpack = PLANNING_NODES["unpack"]
    driven = {(nid, name): field for nid, d in POLICY.nodes.items() for name, field in d.drives.items()}
    for (node_id, input_name), field in driven.items():
        src, slot = wired[node_id]["inputs"][input_name]
        assert src == unpack and outputs[slot] == field, (node_id, input_name)
    # Everything else is the template as it was.
    for node_id, node in template.items():
        for name, value in node["inputs"].items():
            if (node_id, name) not in driven:
                assert wired[node_id]["inputs"][name] == value
    assert {wired[n]["class_type"] for n in PLANNING_NODES.values()} == {
        "M4VisualAnalyst", "M4ReferenceCompare", "M4AnimationDirector", "M4PromptEngineer", "M4PlanUnpack"}
    assert wired[PLANNING_NODES["analyst"]]["inputs"]["image"] == [POLICY.template_contract.images["sketch"], 0]


def test_wire_planning_refuses_taken_ids_and_wrong_load_nodes() -> None:
    from agents.runtime.apply_plan import wire_planning

    contract = POLICY.template_contract
    template = load_template(REPO / POLICY.template)
    sketch = contract.images["sketch"]
    broken = {**template, sketch: {"class_type": "ImageScale", "inputs": {}}}
    with pytest.raises(TemplateError, match=f"'{sketch}'.*LoadImage"):
        wire_planning(broken, POLICY)
    analyst = contract.planning["analyst"]
    template[analyst] = {"class_type": "PreviewImage", "inputs": {}}
    with pytest.raises(TemplateError, match=analyst):
        wire_planning(template, POLICY)


def test_planning_graph_and_load_images_follow_the_contract() -> None:
    from agents.runtime.apply_plan import planning_graph, set_load_images

    contract = POLICY.template_contract
    graph = planning_graph(POLICY, sketch="s.png", reference=None, tags="1girl")
    assert graph[contract.images["sketch"]]["inputs"]["image"] == "s.png"
    assert contract.images["reference"] not in graph
    assert "reference" not in graph[contract.planning["compare"]]["inputs"]
    with_ref = planning_graph(POLICY, sketch="s.png", reference="r.png")
    assert with_ref[contract.planning["compare"]]["inputs"]["reference"] == [contract.images["reference"], 0]
    template = load_template(REPO / POLICY.template)
    wf = set_load_images(template, POLICY, sketch="a.png", reference="b.png")
    assert [wf[contract.images[r]]["inputs"]["image"] for r in ("sketch", "reference")] == ["a.png", "b.png"]
    assert template[contract.images["sketch"]]["inputs"]["image"] != "a.png"  # the template is untouched
