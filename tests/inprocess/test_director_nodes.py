"""M4AnimationDirector -> M4PromptEngineer -> M4PlanUnpack through the real imported pack.

The analysis and reference report come from the pack's own Visual Analyst and Reference Compare
nodes run on real images, so the whole planning chain is exercised as ComfyUI would run it.
"""

from __future__ import annotations

import importlib
import json

import pytest
import torch

from host.inprocess import run_node as _run


def _tensor(path) -> torch.Tensor:
    from agents.measure.imaging import load_image, to_rgb_float

    return torch.from_numpy(to_rgb_float(load_image(path)))[None]


@pytest.fixture(scope="module")
def mods(pack):
    names = ("director", "prompt_engineer", "visual_analyst", "reference_compare")
    return {n: importlib.import_module(f"m4_director.nodes.{n}") for n in names}


@pytest.fixture(scope="module")
def upstream(mods, fixture_data):
    sketch = torch.cat([_tensor(fixture_data / "sketches/human_line.png")])
    analysis = _run(mods["visual_analyst"].M4VisualAnalyst, image=sketch).args[0]
    ref = _run(mods["reference_compare"].M4ReferenceCompare, sketch=sketch,
               reference=_tensor(fixture_data / "references/madoka.jpg")).args[0]
    return analysis, ref


def test_schemas_have_tooltips_and_m4_ids(mods):
    d, pe = mods["director"], mods["prompt_engineer"]
    for node in (d.M4AnimationDirector, d.M4PlanUnpack, pe.M4PromptEngineer):
        schema = node.GET_SCHEMA()
        assert schema.node_id.startswith("M4") and schema.description
        for item in list(schema.inputs) + list(schema.outputs):
            assert item.tooltip, f"{schema.node_id}.{item.id}"
    assert "M4PlanUnpack" in {n.GET_SCHEMA().node_id for n in d.NODES}


def test_chain_produces_consistent_outputs(mods, upstream):
    from agents.planning.animation_director import plan_violations
    from agents.policy import default_policy

    analysis, ref = upstream
    d, pe = mods["director"], mods["prompt_engineer"]
    out = _run(d.M4AnimationDirector, analysis=analysis, reference_report=ref, intent_strength=-1.0)
    plan = out.args[0]
    assert out.args[1:] == (plan.cfg1, plan.cfg2, plan.denoise1, plan.denoise2, plan.ip1_weight, plan.ip2_weight)
    assert plan_violations(plan) == []
    panel = out.ui["m4_panel"][0]
    assert panel["kind"] == "plan" and panel["data"]["diagnostics"]["reference_mode"] == \
        plan.diagnostics["reference_mode"]
    json.dumps(out.ui, allow_nan=False)  # the panel payload must survive the websocket

    pe_out = _run(pe.M4PromptEngineer, plan=plan, analysis=analysis, subject_tags="1girl, twintails, colored")
    plan_p, ks1p, ks1n, ks2p, ks2n = pe_out.args
    assert plan_p.prompts == {"ks1_positive": ks1p, "ks1_negative": ks1n, "ks2_positive": ks2p, "ks2_negative": ks2n}
    assert ks1p.startswith("1girl, twintails") and ks1p != ks2p and "colored" not in ks1p.split(", ")
    assert plan.prompts == {}  # the Director's plan object is not mutated downstream

    unpacked = _run(d.M4PlanUnpack, plan=plan_p).args
    assert len(unpacked) == 18
    # Every value the policy's driver map sends to a template node equals the unpacked output.
    by_field = dict(zip([f for _i, f, _k, _t in d._VALUE_OUTPUTS], unpacked[:14], strict=True))
    by_field.update(zip(("ks1_positive", "ks1_negative", "ks2_positive", "ks2_negative"), unpacked[14:], strict=True))
    for node_id, inputs in plan_p.node_inputs().items():
        driver = default_policy().nodes[node_id]
        for input_name, value in inputs.items():
            assert by_field[driver.drives[input_name]] == value, (node_id, input_name)
    assert isinstance(unpacked[0], int) and isinstance(unpacked[3], int) and isinstance(unpacked[1], float)


def test_director_without_reference_and_with_explicit_intent(mods, upstream):
    analysis, _ = upstream
    d = mods["director"]
    weak = _run(d.M4AnimationDirector, analysis=analysis, intent_strength=0.0).args[0]
    strong = _run(d.M4AnimationDirector, analysis=analysis, intent_strength=1.0).args[0]
    assert weak.diagnostics["reference_mode"] == "off" and weak.signals["R"] == 0.0
    assert strong.diagnostics["base_cfg"] > weak.diagnostics["base_cfg"]
    assert strong.diagnostics["intent_source"] == "input"


def test_plan_unpack_without_prompts_and_bad_inputs(mods, upstream):
    analysis, _ = upstream
    d = mods["director"]
    plan = _run(d.M4AnimationDirector, analysis=[analysis[0], analysis[0]]).args[0]
    assert any("first image" in w for w in plan.diagnostics["warnings"])
    assert _run(d.M4PlanUnpack, plan=plan).args[14:] == ("", "", "", "")
    with pytest.raises(ValueError, match="plan"):
        _run(d.M4PlanUnpack, plan={"cfg1": 8})
    with pytest.raises(ValueError, match="analysis"):
        _run(d.M4AnimationDirector, analysis=[])
