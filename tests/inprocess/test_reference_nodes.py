"""M4ReferenceCompare and M4LineQualityAnalyzer run through the real imported pack on real image tensors.

The CLIP_VISION route uses a real comfy.clip_vision.ClipVisionModel built from a tiny config (two
layers, 32 wide) with random weights: the values mean nothing, the wiring (encode_image ->
image_embeds -> cosine) is what is checked.
"""

from __future__ import annotations

import importlib
import json

import numpy as np
import pytest
import torch


def _tensor(path) -> torch.Tensor:
    from agents.measure.imaging import load_image, to_rgb_float

    return torch.from_numpy(to_rgb_float(load_image(path)))[None]


@pytest.fixture(scope="module")
def nodes(pack):
    rc = importlib.import_module("m4_director.nodes.reference_compare")
    lq = importlib.import_module("m4_director.nodes.line_quality")
    return rc.M4ReferenceCompare, lq.M4LineQualityAnalyzer


@pytest.fixture(scope="module")
def tiny_clip_vision(comfy, tmp_path_factory):
    import comfy.clip_vision

    cfg = {"hidden_act": "quick_gelu", "hidden_size": 32, "image_size": 28, "intermediate_size": 64,
           "layer_norm_eps": 1e-5, "model_type": "clip_vision_model", "num_attention_heads": 2,
           "num_channels": 3, "num_hidden_layers": 2, "patch_size": 14, "projection_dim": 16}
    path = tmp_path_factory.mktemp("clip_vision") / "tiny_clip_vision.json"
    path.write_text(json.dumps(cfg))
    model = comfy.clip_vision.ClipVisionModel(str(path))
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in model.model.named_parameters():  # ComfyUI layers start as torch.empty
            if p.ndim == 1:
                p.copy_(torch.ones_like(p) if "norm" in name else torch.zeros_like(p))
            else:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.2)
    return model


def test_reference_compare_node_classical(nodes, fixture_data) -> None:
    node, _ = nodes
    line = _tensor(fixture_data / "references/madoka_lineart.png")
    out_same = node.execute(line, _tensor(fixture_data / "references/madoka.jpg"),
                            sketch_tags="1girl, pink hair", reference_tags="1girl, pink hair")
    out_other = node.execute(line, _tensor(fixture_data / "references/saber.png"))
    report, sim, penalty, d, ac, final, colored = out_same.args
    assert report.similarity_source == "classical"
    assert (sim, penalty, d, ac, final, colored) == (report.similarity, report.conflict_penalty,
                                                     report.style_distance, report.accessory_conflict,
                                                     report.reference_final_score, report.colored)
    assert colored is True
    assert sim > out_other.args[1]
    panel = out_same.ui["m4_panel"][0]
    assert panel["kind"] == "reference"
    json.dumps(panel["data"])  # JSON-able for the web extension


def test_reference_compare_node_without_reference(nodes, fixture_data) -> None:
    node, _ = nodes
    out = node.execute(_tensor(fixture_data / "sketches/user_1.png"))
    assert out.args[0].present is False
    assert out.args[5] == 0.0


def test_reference_compare_node_with_clip_vision(nodes, fixture_data, tiny_clip_vision) -> None:
    node, _ = nodes
    s = _tensor(fixture_data / "sketches/user_3.png")
    r = _tensor(fixture_data / "references/man_photo.png")
    out = node.execute(s, r, clip_vision=tiny_clip_vision)
    report = out.args[0]
    assert report.similarity_source == "clip_vision"
    with torch.no_grad():
        es = tiny_clip_vision.encode_image(s).image_embeds[0]
        er = tiny_clip_vision.encode_image(r).image_embeds[0]
    expected = max(0.0, float(torch.nn.functional.cosine_similarity(es, er, dim=0)))
    assert report.similarity == pytest.approx(expected, abs=1e-5)
    assert node.execute(s, s, clip_vision=tiny_clip_vision).args[1] == pytest.approx(1.0, abs=1e-5)


def test_reference_compare_node_rejects_bad_tensor(nodes) -> None:
    node, _ = nodes
    with pytest.raises(ValueError, match="sketch"):
        node.execute(torch.zeros(64, 64, 3))


def _plan(fixture_data):
    va = importlib.import_module("m4_director.agents.measure.visual_analyst")
    rc = importlib.import_module("m4_director.agents.measure.reference_compare")
    ad = importlib.import_module("m4_director.agents.planning.animation_director")
    from agents.measure.imaging import load_image

    sketch = load_image(fixture_data / "sketches/user_1.png")
    analysis = va.analyse_batch([sketch])[0]
    return ad.plan(analysis, rc.compare(sketch, load_image(fixture_data / "references/madoka.jpg")))


def test_line_quality_node_passes_clean_art_and_keeps_plan(nodes, fixture_data) -> None:
    from pure.test_line_quality import clean

    _, node = nodes

    plan = _plan(fixture_data)
    img = torch.from_numpy(clean().astype(np.float32) / 255.0)[None]
    out = node.execute(img, plan)
    passed, *scores, report, retry_plan = out.args
    assert passed is True and report.startswith("PASS")
    assert retry_plan is plan
    assert out.ui["m4_panel"][0]["kind"] == "line_quality"
    assert len(scores) == 5


def test_line_quality_node_fails_broken_sketch_and_makes_safer_plan(nodes, fixture_data) -> None:
    _, node = nodes
    policy = importlib.import_module("m4_director.agents.policy").load_policy()
    plan = _plan(fixture_data)
    out = node.execute(_tensor(fixture_data / "sketches/house_line.png"), plan)
    passed, broken, *_, report, retry_plan = out.args
    assert passed is False
    assert broken > policy.line_quality["max_broken"]
    assert "broken" in report
    assert retry_plan is not plan and retry_plan.is_retry
    before, after = plan.values(), retry_plan.values()
    for key in ("cfg2", "denoise2"):
        assert after[key] <= before[key]
    assert after["cfg2"] < before["cfg2"] or after["denoise2"] < before["denoise2"]
    data = out.ui["m4_panel"][0]["data"]
    assert data["retried"] is True and "broken" in data["failures"]
    json.dumps(data)
    again = node.execute(_tensor(fixture_data / "sketches/house_line.png"), retry_plan).args
    assert again[0] is False and again[-1] is retry_plan  # M4 retries once
    assert "already a retry" in again[-2]


def test_line_quality_node_batch_is_judged_by_its_worst_image(nodes, fixture_data) -> None:
    _, node = nodes
    a = _tensor(fixture_data / "sketches/user_1.png")
    b = _tensor(fixture_data / "sketches/house_line.png")
    single = node.execute(b).args
    batch = node.execute(torch.cat([a, b], 0)).args
    assert batch[0] is False
    assert batch[1] == pytest.approx(single[1])
    assert batch[-1] is None  # no plan given, none returned
