"""The generated UI workflows: no drift from the generator, every policy-driven input fed by Plan Unpack."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from agents.policy import default_policy

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = REPO / "workflows"
sys.path.insert(0, str(REPO / "scripts"))
import build_workflows  # noqa: E402  (scripts/build_workflows.py: standard library + agents only)

PRESETS = ("Animation_Workflow_M4.json", "Animation_Workflow_M4_Adaptive.json")
SEED_IDS = ("5", "55", "103", "104", "66", "105", "2", "3", "77", "76")
GROUPS = ("Inputs", "M4 agents", "Stage 1 (structure)", "Stage 2 (cleanup)", "Outputs")


def _load(name: str) -> dict[str, Any]:
    return json.loads((WORKFLOWS / name).read_text(encoding="utf-8"))


def _generated_names() -> list[str]:
    return sorted(build_workflows.build_all())


@pytest.fixture(scope="module")
def snapshot() -> dict[str, Any]:
    return build_workflows.load_snapshot()


def _by_id(wf: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {n["id"]: n for n in wf["nodes"]}


def _feeding_link(wf: dict[str, Any], node_id: int, input_name: str) -> list[Any] | None:
    node = _by_id(wf)[node_id]
    link_id = next((i["link"] for i in node["inputs"] if i["name"] == input_name), None)
    return next((link for link in wf["links"] if link[0] == link_id), None) if link_id is not None else None


def test_committed_workflows_equal_a_fresh_generation(tmp_path: Path) -> None:
    written = build_workflows.write_all(tmp_path)
    assert {p.name for p in written} >= set(PRESETS)
    for path in written:
        committed = WORKFLOWS / path.name
        assert committed.is_file(), f"{path.name} is generated but not committed: run scripts/build_workflows.py"
        assert committed.read_bytes() == path.read_bytes(), (
            f"workflows/{path.name} differs from what scripts/build_workflows.py generates: regenerate it")


def test_each_generated_workflow_has_a_small_jpg_thumbnail_for_browse_templates() -> None:
    for name in _generated_names():
        thumb = WORKFLOWS / name.replace(".json", ".jpg")
        assert thumb.is_file(), f"{thumb.name} missing: run scripts/build_workflows.py --thumbnails URL"
        data = thumb.read_bytes()
        assert data[:3] == b"\xff\xd8\xff", f"{thumb.name} is not a JPEG"
        assert 2_000 < len(data) < 100_000, f"{thumb.name}: {len(data)} bytes"


@pytest.mark.parametrize("name", PRESETS)
def test_every_policy_driven_input_is_fed_by_plan_unpack(name: str) -> None:
    wf = _load(name)
    nodes = _by_id(wf)
    unpack_ids = [n["id"] for n in wf["nodes"] if n["type"] == "M4PlanUnpack"]
    assert len(unpack_ids) == 1
    unpack = nodes[unpack_ids[0]]
    drivers = default_policy().nodes
    assert drivers, "the policy drives no node"
    checked = 0
    for node_id, driver in drivers.items():
        node = nodes[int(node_id)]
        assert node["type"] == driver.class_type
        for input_name, plan_field in driver.drives.items():
            link = _feeding_link(wf, int(node_id), input_name)
            assert link is not None, f"{name}: node {node_id}.{input_name} ({plan_field}) is a widget, not a link"
            assert link[1] == unpack["id"], f"{name}: node {node_id}.{input_name} is not fed by M4PlanUnpack"
            out_name = unpack["outputs"][link[2]]["name"]
            assert out_name == build_workflows.plan_unpack_outputs()[plan_field], (node_id, input_name, out_name)
            checked += 1
    assert checked == sum(len(d.drives) for d in drivers.values()) >= 18


def test_plan_unpack_output_names_line_up_with_the_plan_fields() -> None:
    """The generator's field->output table, checked against independent facts of the plan's names."""
    mapping = build_workflows.plan_unpack_outputs()
    drives = {f for d in default_policy().nodes.values() for f in d.drives.values()}
    assert drives <= set(mapping)
    for plan_field, out in mapping.items():
        if plan_field.endswith(("1", "2")):  # steps1 -> ks1_steps
            assert out == f"ks{plan_field[-1]}_{plan_field[:-1]}"
        elif plan_field.startswith(("union", "pose", "ip")):
            stem = plan_field.replace("pose", "openpose").replace("_end", "_end_percent") \
                if not plan_field.startswith("ip") else plan_field
            assert out == stem
        else:  # the four prompts keep their field names
            assert out == plan_field and plan_field.startswith(("ks1_", "ks2_"))


@pytest.mark.parametrize("name", PRESETS)
def test_locked_nodes_keep_their_seed_ids_and_the_graph_matches_the_api_template(name: str) -> None:
    wf = _load(name)
    nodes = _by_id(wf)
    api = json.loads((WORKFLOWS / "api" / "Animation_Workflow_M4_Api.json").read_text(encoding="utf-8"))
    for node_id in SEED_IDS:
        assert nodes[int(node_id)]["type"] == api[node_id]["class_type"]
    for node_id, node in api.items():
        ui = nodes[int(node_id)]
        assert ui["type"] == node["class_type"]
        assert ui.get("title") == node["_meta"]["title"]
        for input_name, value in node["inputs"].items():
            if isinstance(value, list):  # a template link: same source, unless an adaptive patch sits between
                link = _feeding_link(wf, int(node_id), input_name)
                assert link is not None, f"{name}: {node_id}.{input_name} lost its link"
                src = nodes[link[1]]
                if str(link[1]) != value[0]:
                    assert "Adaptive" in name and src["type"] == "M4AdaptiveCFG", (node_id, input_name)
                    assert str(_feeding_link(wf, src["id"], "model")[1]) == value[0]


@pytest.mark.parametrize("name", PRESETS)
def test_agents_are_wired_and_grouped(name: str) -> None:
    wf = _load(name)
    nodes = _by_id(wf)
    by_type = {n["type"]: n for n in wf["nodes"]}

    def source(node: dict[str, Any], inp: str) -> dict[str, Any]:
        link = _feeding_link(wf, node["id"], inp)
        assert link is not None, f"{node['type']}.{inp} is not linked"
        return nodes[link[1]]

    sketch, reference = nodes[10], nodes[11]
    assert source(by_type["M4VisualAnalyst"], "image") is sketch
    assert source(by_type["M4ReferenceCompare"], "sketch") is sketch
    assert source(by_type["M4ReferenceCompare"], "reference") is reference
    assert source(by_type["M4AnimationDirector"], "analysis")["type"] == "M4VisualAnalyst"
    assert source(by_type["M4AnimationDirector"], "reference_report")["type"] == "M4ReferenceCompare"
    assert source(by_type["M4PromptEngineer"], "plan")["type"] == "M4AnimationDirector"
    assert source(by_type["M4PlanUnpack"], "plan")["type"] == "M4PromptEngineer"
    assert tuple(g["title"] for g in wf["groups"]) == GROUPS
    # every node sits inside exactly one group's box, and columns run left to right
    for node in wf["nodes"]:
        inside = [g["title"] for g in wf["groups"] if _contains(g["bounding"], node)]
        assert len(inside) == 1, f"node {node['id']} ({node['type']}) is in groups {inside}"
    lefts = [min(n["pos"][0] for n in wf["nodes"] if _contains(g["bounding"], n)) for g in wf["groups"]]
    assert lefts[0] < lefts[1] < lefts[2] < lefts[4] and lefts[2] == lefts[3]


def _contains(box: list[float], node: dict[str, Any]) -> bool:
    x, y, w, h = box
    nx, ny = node["pos"]
    nw, nh = node["size"]
    return x <= nx and nx + nw <= x + w and y <= ny and ny + nh <= y + h


def test_adaptive_preset_patches_both_samplers_with_ids_110_and_111() -> None:
    wf = _load("Animation_Workflow_M4_Adaptive.json")
    nodes = _by_id(wf)
    assert nodes[110]["type"] == nodes[111]["type"] == "M4AdaptiveCFG"
    assert _feeding_link(wf, 5, "model")[1] == 110
    assert _feeding_link(wf, 55, "model")[1] == 111
    static_types = sorted(n["type"] for n in _load("Animation_Workflow_M4.json")["nodes"])
    assert sorted(n["type"] for n in wf["nodes"]) == sorted(static_types + ["M4AdaptiveCFG"] * 2)


@pytest.mark.parametrize("name", sorted(build_workflows.build_all()))
def test_link_table_is_consistent(name: str, snapshot: dict[str, Any]) -> None:
    wf = _load(name)
    nodes = _by_id(wf)
    assert len(nodes) == len(wf["nodes"]), "duplicate node ids"
    assert wf["version"] == 0.4 and wf["last_node_id"] == max(nodes) and wf["last_link_id"] == len(wf["links"])
    seen_targets = set()
    for link_id, origin, o_slot, target, t_slot, typ in wf["links"]:
        assert origin in nodes and target in nodes, f"link {link_id} names a missing node"
        out = nodes[origin]["outputs"][o_slot]
        inp = nodes[target]["inputs"][t_slot]
        assert link_id in (out["links"] or []), f"link {link_id} missing from {origin}'s output list"
        assert inp["link"] == link_id, f"link {link_id}: target_slot {t_slot} of {target} points elsewhere"
        assert typ == out["type"] and inp["type"] in (typ, "*"), f"link {link_id}: {typ} into {inp['type']}"
        assert (target, t_slot) not in seen_targets
        seen_targets.add((target, t_slot))
        # the types agree with the real node definitions, not only with each other
        defs = snapshot[nodes[target]["type"]]
        assert {i["name"]: i["type"] for i in defs["inputs"]}[inp["name"]] == inp["type"]
        assert snapshot[nodes[origin]["type"]]["outputs"][o_slot]["type"] == typ
    linked_inputs = sum(1 for n in wf["nodes"] for i in n["inputs"] if i["link"] is not None)
    assert linked_inputs == len(wf["links"])
    for node in wf["nodes"]:  # a required socket left open would fail at queue time
        required = {i["name"] for i in snapshot[node["type"]]["inputs"]
                    if not i["optional"] and i["type"] not in build_workflows.WIDGET_TYPES}
        open_ = {i["name"] for i in node["inputs"] if i["name"] in required and i["link"] is None}
        assert not open_, f"{name}: node {node['id']} ({node['type']}) has unconnected {sorted(open_)}"


def test_ksampler_widgets_follow_the_ui_order() -> None:
    """[seed, control_after_generate, steps, cfg, sampler_name, scheduler, denoise] (node-contracts.md)."""
    api = json.loads((WORKFLOWS / "api" / "Animation_Workflow_M4_Api.json").read_text(encoding="utf-8"))["5"]["inputs"]
    values = _by_id(_load("Animation_Workflow_M4.json"))[5]["widgets_values"]
    assert values == [api["seed"], "fixed", api["steps"], api["cfg"], api["sampler_name"], api["scheduler"],
                      api["denoise"]]


def test_a_wrong_link_type_is_refused(snapshot: dict[str, Any]) -> None:
    g = build_workflows.UIGraph("bad", snapshot)
    g.add(1, "LoadImage", (0, 0), "x")
    g.add(2, "KSampler", (300, 0), "x")
    with pytest.raises(ValueError, match="cannot feed"):
        g.link(1, 0, 2, "model")


def test_browse_templates_folder_holds_only_ui_format_files() -> None:
    """ComfyUI lists every workflows/*.json under Browse Templates; an API-format file there would not load."""
    for path in sorted(WORKFLOWS.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        assert isinstance(data.get("nodes"), list) and "links" in data, f"{path.name} is not a UI-format workflow"
