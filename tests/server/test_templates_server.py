"""Both locked M4 API templates (static and adaptive) against a real ComfyUI server.

The runs here use RANDOM-WEIGHT STAND-IN MODELS: cli.template_run.swap_in_standins swaps the template's
checkpoint and ControlNet file names for the generated stand-ins, shrinks ImageScale to 64x64 and caps
the sampler steps. IP-Adapter and OpenPose are the third-party contract stand-ins in tests/host/standins.
What is proven is that the graph validates and executes with the plan's values in it; nothing here is
about image quality.
"""

from __future__ import annotations

import copy
import io
import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from agents.guidance.data import EVENT
from agents.measure.imaging import load_image
from agents.measure.reference_compare import compare
from agents.measure.visual_analyst import analyse
from agents.planning.animation_director import plan as make_plan
from agents.planning.plan_types import Plan
from agents.planning.prompt_engineer import build_prompts
from agents.policy import default_policy
from agents.runtime.apply_plan import TemplateError, apply_plan, load_template, set_load_images
from cli.local_comfy import PromptRejected
from cli.template_run import (
    STANDIN_NOTICE,
    stage_nodes,
    swap_in_standins,
)

REPO = Path(__file__).resolve().parents[2]
STATIC = REPO / "workflows" / "api" / "Animation_Workflow_M4_Api.json"
ADAPTIVE = REPO / "workflows" / "api" / "Animation_Workflow_M4_Adaptive_Api.json"
TEMPLATES = sorted((REPO / "workflows" / "api").glob("*_Api.json"))
# File names swapped (models) or set (uploaded images) before a run: checked for shape, not membership.
FILE_INPUTS = {("CheckpointLoaderSimple", "ckpt_name"): ".safetensors", ("ControlNetLoader", "control_net_name"):
               ".safetensors", ("LoadImage", "image"): ".png"}
SCALAR_TYPES = {"INT": int, "FLOAT": (int, float), "BOOLEAN": bool, "STRING": str}


def _is_link(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2 and isinstance(value[0], str) and isinstance(value[1], int)


def _combo_options(spec: list) -> list | None:
    """Allowed values of a combo input as /object_info lists it (V1: a list; V3: 'COMBO' + options)."""
    if isinstance(spec[0], list):
        return spec[0]
    if spec[0] == "COMBO":
        return spec[1].get("options", [])
    return None


def _problems(template: dict, info: dict) -> list[str]:
    problems = []
    for node_id, node in template.items():
        kind = node["class_type"]
        if kind not in info:
            problems.append(f"node {node_id}: class_type {kind} is not registered on the server")
            continue
        declared = {**info[kind]["input"].get("required", {}), **info[kind]["input"].get("optional", {})}
        missing = set(info[kind]["input"].get("required", {})) - set(node["inputs"])
        if missing:
            problems.append(f"node {node_id} ({kind}): required input(s) {sorted(missing)} not set")
        for name, value in node["inputs"].items():
            if name not in declared:
                problems.append(f"node {node_id} ({kind}): input {name!r} is not declared")
                continue
            spec = declared[name]
            if _is_link(value):
                src = template.get(value[0])
                if src is None:
                    problems.append(f"node {node_id}.{name}: links to missing node {value[0]}")
                elif src["class_type"] not in info:
                    continue  # reported at that node
                elif value[1] >= len(info[src["class_type"]]["output"]):
                    problems.append(f"node {node_id}.{name}: output {value[1]} of node {value[0]} does not exist")
                else:
                    out_type, in_type = info[src["class_type"]]["output"][value[1]], spec[0]
                    if isinstance(in_type, str) and in_type not in ("*",) and out_type not in in_type.split(","):
                        problems.append(f"node {node_id}.{name}: {out_type} linked into {in_type}")
                continue
            options = _combo_options(spec)
            if options is not None:
                if (kind, name) in FILE_INPUTS:
                    if not isinstance(value, str) or not value.endswith(FILE_INPUTS[kind, name]):
                        problems.append(f"node {node_id}.{name}: file name {value!r}")
                elif value not in options:
                    problems.append(f"node {node_id}.{name}: {value!r} is not one of the server's options")
                continue
            py_type = SCALAR_TYPES.get(spec[0])
            if py_type is None:
                problems.append(f"node {node_id}.{name}: a literal for input type {spec[0]}")
                continue
            if not isinstance(value, py_type) or (spec[0] != "BOOLEAN" and isinstance(value, bool)):
                problems.append(f"node {node_id}.{name}: {value!r} is not {spec[0]}")
                continue
            opts = spec[1] if len(spec) > 1 else {}
            if spec[0] in ("INT", "FLOAT") and not opts.get("min", value) <= value <= opts.get("max", value):
                problems.append(f"node {node_id}.{name}: {value} outside [{opts.get('min')}, {opts.get('max')}]")
    return problems


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.name)
def test_template_nodes_and_inputs_match_the_server(comfy_server, path: Path) -> None:
    info = comfy_server.object_info()
    template = load_template(path)
    assert _problems(template, info) == []
    # The stand-in model files are what the server offers in the swapped inputs.
    assert comfy_server.checkpoint in _combo_options(info["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"])
    assert comfy_server.controlnet in _combo_options(
        info["ControlNetLoader"]["input"]["required"]["control_net_name"])


def test_the_checker_catches_a_bad_template(comfy_server) -> None:
    """The object_info check above can fail: each kind of damage is reported with its node id."""
    info = comfy_server.object_info()
    bad = load_template(STATIC)
    bad["21"]["inputs"]["type"] = "lineart"                 # not a SetUnionControlNetType option
    bad["66"]["inputs"]["weight_kind"] = "style transfer"   # undeclared input
    bad["5"]["inputs"]["steps"] = 0                         # below KSampler's min
    bad["12"]["class_type"] = "ImageScaleX"                 # unknown node type
    text = "\n".join(_problems(bad, info))
    for needle in ("node 21.type", "node 66 (IPAdapterAdvanced): input 'weight_kind'", "node 5.steps", "node 12"):
        assert needle in text


def _plan(fixture_data: Path) -> tuple[Plan, dict[str, str]]:
    """A real plan: the agents analyse a real pose sketch and a line-art reference."""
    sketch = load_image(fixture_data / "sketches" / "human_line.png")
    reference = load_image(fixture_data / "references" / "madoka_lineart.png")
    analysis = analyse(sketch, "human_line", text_tags="1girl, solo")
    report = compare(sketch, reference)
    p = make_plan(analysis, report)
    prompts = build_prompts(p, analysis, ["1girl", "solo"]).prompts()
    return p.with_prompts(prompts), prompts


def _prepared(comfy_server, fixture_data: Path, template_path: Path) -> tuple[Plan, dict, Any]:
    p, _ = _plan(fixture_data)
    applied = apply_plan(load_template(template_path), p, default_policy())
    named = set_load_images(applied,
                            sketch=comfy_server.upload_image(fixture_data / "sketches" / "human_line.png"),
                            reference=comfy_server.upload_image(fixture_data / "references" / "madoka_lineart.png"))
    swap = swap_in_standins(named, checkpoint=comfy_server.checkpoint, controlnet=comfy_server.controlnet)
    return p, named, swap


def _run(comfy_server, workflow: dict) -> tuple[dict, list[str], list[dict]]:
    executed: list[str] = []
    guidance: list[dict] = []

    def on_message(kind: str, data: dict) -> None:
        if kind == "executing" and data.get("node"):
            executed.append(str(data["node"]))
        elif kind == EVENT:
            guidance.append(data)

    entry = comfy_server.run(workflow, timeout=300, on_message=on_message)
    return entry, executed, guidance


def _assert_plan_reached_the_server(entry: dict, p: Plan) -> None:
    stored = entry["prompt"][2]  # /history keeps [number, prompt_id, prompt, extra, outputs]
    for node_id, values in p.node_inputs(default_policy()).items():
        for name, value in values.items():
            assert stored[node_id]["inputs"][name] == value, f"node {node_id}.{name}"
    assert stored["66"]["inputs"]["weight"] == p.ip1_weight and stored["66"]["inputs"]["end_at"] == p.ip1_end_at
    assert stored["105"]["inputs"]["weight"] == p.ip2_weight and stored["105"]["inputs"]["end_at"] == p.ip2_end_at


def _assert_stage_images(comfy_server, entry: dict, workflow: dict) -> None:
    for stage, node_id in stage_nodes(workflow).items():
        images = entry["outputs"].get(node_id, {}).get("images", [])
        assert images, f"{stage} (node {node_id}) saved no image"
        data = comfy_server.view(images[0]["filename"], images[0].get("subfolder", ""), images[0]["type"])
        with Image.open(io.BytesIO(data)) as img:
            assert img.size == (64, 64)


def test_static_preset_executes_with_the_plan(comfy_server, fixture_data: Path) -> None:
    p, named, swap = _prepared(comfy_server, fixture_data, STATIC)
    assert swap.notice == STANDIN_NOTICE and "STAND-IN" in swap.describe()
    swapped = {(nid, name) for nid, name, _, _ in swap.changes}
    assert {("4", "ckpt_name"), ("20", "control_net_name"), ("12", "width"), ("5", "steps")} <= swapped
    assert all(name in {"ckpt_name", "control_net_name", "width", "height", "resolution", "steps"}
               for _, name, _, _ in swap.changes), "the swap must not touch plan values other than steps"
    entry, executed, guidance = _run(comfy_server, swap.workflow)
    assert entry["status"]["status_str"] == "success"
    _assert_stage_images(comfy_server, entry, swap.workflow)
    # Every driven value except the capped steps arrived as planned.
    p_small = Plan.from_dict({**p.to_dict(), "steps1": swap.workflow["5"]["inputs"]["steps"],
                              "steps2": swap.workflow["55"]["inputs"]["steps"]})
    _assert_plan_reached_the_server(entry, p_small)
    assert {"66", "105", "103", "104", "5", "55"} <= set(executed)
    assert guidance == [], "the static preset has no adaptive CFG"


def test_adaptive_preset_executes_and_patches_both_samplers(comfy_server, fixture_data: Path) -> None:
    p, named, swap = _prepared(comfy_server, fixture_data, ADAPTIVE)
    entry, executed, guidance = _run(comfy_server, swap.workflow)
    assert entry["status"]["status_str"] == "success"
    _assert_stage_images(comfy_server, entry, swap.workflow)
    p_small = Plan.from_dict({**p.to_dict(), "steps1": swap.workflow["5"]["inputs"]["steps"],
                              "steps2": swap.workflow["55"]["inputs"]["steps"]})
    _assert_plan_reached_the_server(entry, p_small)
    assert {"110", "111"} <= set(executed), "the M4AdaptiveCFG nodes did not run"
    finals = {g["node"] for g in guidance if g.get("final")}
    assert finals == {"110", "111"}, f"each patched sampler reports its run; got {guidance[-4:]}"

    # With a constant schedule and no quality nudge, every per-step scale IS the sampler's cfg:
    # the Director's cfg1 / cfg2 are the base the patch uses.
    flat = copy.deepcopy(swap.workflow)
    for node_id in ("110", "111"):
        flat[node_id]["inputs"].update(schedule="constant", quality_adjust=False)
    entry, _, guidance = _run(comfy_server, flat)
    assert entry["status"]["status_str"] == "success"
    scales = {nid: [g["cfg"] for g in guidance if g.get("node") == nid and "cfg" in g] for nid in ("110", "111")}
    assert scales["110"] and scales["111"]
    assert all(abs(c - p.cfg1) < 1e-6 for c in scales["110"]), (scales["110"], p.cfg1)
    assert all(abs(c - p.cfg2) < 1e-6 for c in scales["111"]), (scales["111"], p.cfg2)


def test_broken_template_fails_in_apply_plan_and_on_the_server(comfy_server, fixture_data: Path) -> None:
    p, _ = _plan(fixture_data)
    missing = load_template(STATIC)
    del missing["104"]
    with pytest.raises(TemplateError, match="'104'"):
        apply_plan(missing, p)
    renamed = load_template(ADAPTIVE)
    renamed["105"]["inputs"]["end"] = renamed["105"]["inputs"].pop("end_at")
    with pytest.raises(TemplateError, match=r"'105'.*'end_at'"):
        apply_plan(renamed, p)

    # Past the apply layer, the server itself names the node: a renamed required (linked) input ...
    _, _, swap = _prepared(comfy_server, fixture_data, STATIC)
    broken = copy.deepcopy(swap.workflow)
    broken["5"]["inputs"]["latent"] = broken["5"]["inputs"].pop("latent_image")
    with pytest.raises(PromptRejected) as rejected:
        comfy_server.run(broken, timeout=60)
    assert "5" in rejected.value.node_errors
    assert "latent_image" in json.dumps(rejected.value.node_errors["5"])
    # ... and a node type the server does not have.
    unknown = copy.deepcopy(swap.workflow)
    unknown["66"]["class_type"] = "IPAdapterAdvancedV9"
    with pytest.raises(PromptRejected) as rejected:
        comfy_server.run(unknown, timeout=60)
    assert "IPAdapterAdvancedV9" in str(rejected.value) and "#66" in str(rejected.value)


def test_demo_run_path_writes_stage_images_into_the_report(comfy_server, tmp_path: Path) -> None:
    """`./m4 demo` minus the server start: plan on the server, run the static template on the stand-ins,
    and the pair's folder and report carry both stage images and the stand-in notice."""
    from agents.runtime.apply_plan import planning_graph, planning_reports
    from cli.demo import run_locked_template
    from cli.inputs import FIXTURES
    from cli.report import write_report

    sketch, reference = FIXTURES / "sketches" / "user_3.png", FIXTURES / "references" / "madoka_lineart.png"
    sketch_name, ref_name = comfy_server.upload_image(sketch), comfy_server.upload_image(reference)
    graph = planning_graph(sketch=sketch_name, reference=ref_name, tags="hot air balloon")
    result = planning_reports(comfy_server.run(graph, timeout=240))
    run = run_locked_template(comfy_server, result, sketch_name, ref_name, tmp_path / "user_3", "[t]")
    assert run["notice"] == STANDIN_NOTICE
    for name in run["images"].values():
        with Image.open(tmp_path / "user_3" / name) as img:
            assert img.size == (64, 64)
    result["template_run"] = run
    report = write_report(tmp_path / "user_3", title="t", sketch=sketch, reference=reference, result=result,
                          comfy_version="test", run=run)
    page = report.read_text()
    assert "nothing was generated" not in page
    assert 'src="stage1.png"' in page and 'src="final.png"' in page and STANDIN_NOTICE in page
    assert json.loads((tmp_path / "user_3" / "plan.json").read_text())["template_run"]["images"] == run["images"]
