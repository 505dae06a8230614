"""M4VisualAnalyst through the real ComfyUI-imported pack: schema, outputs, ui payload, open_clip path."""

from __future__ import annotations

import importlib
import json
import sys

import numpy as np
import pytest
import torch

from agents.measure.imaging import load_image, to_rgb_float
from agents.measure.visual_analyst import analyse
from host.inprocess import run_node as run

MODULE = "m4_director.nodes.visual_analyst"


@pytest.fixture(scope="module")
def node_cls(pack):
    # Imported as ComfyUI's loader would reach it (package m4_director), not through the whole
    # extension, so another family's schema error cannot mask this node's own result.
    importlib.import_module(MODULE)
    nodes_pkg = sys.modules["m4_director.nodes"]
    assert "visual_analyst" in nodes_pkg._FAMILIES
    cls = sys.modules[MODULE].M4VisualAnalyst
    assert cls in sys.modules[MODULE].NODES
    return cls




@pytest.fixture(scope="module")
def batch(fixture_data):
    imgs = [to_rgb_float(load_image(fixture_data / "sketches" / n)) for n in ("house_line.png", "user_1.png")]
    return torch.from_numpy(np.stack(imgs))  # IMAGE [2, 512, 512, 3]


def test_schema_has_tooltips_everywhere_and_v1_info(node_cls):
    schema = node_cls.GET_SCHEMA()
    assert schema.node_id == "M4VisualAnalyst" and schema.category.startswith("M4 Director")
    for item in [*schema.inputs, *schema.outputs]:
        assert item.tooltip, item.id
    info = node_cls.INPUT_TYPES()
    assert set(info["required"]) == {"image"}
    assert set(info["optional"]) == {"pose_keypoint", "mask", "subject_tags", "open_clip_model"}
    assert info["optional"]["mask"][0] == "MASK"
    assert info["optional"]["pose_keypoint"][0] == "POSE_KEYPOINT"
    assert node_cls.RETURN_TYPES[0] == "M4_ANALYSIS"
    assert tuple(node_cls.RETURN_TYPES[1:]) == ("STRING", "FLOAT", "FLOAT", "FLOAT", "FLOAT", "STRING", "FLOAT",
                                         "INT", "FLOAT", "STRING", "STRING", "STRING")


def test_node_on_a_real_sketch_batch(node_cls, batch):
    out = run(node_cls, image=batch, subject_tags="house, building")
    analyses = out.result[0]
    assert len(analyses) == 2
    house, turtle = analyses
    assert house.broken_lines > turtle.broken_lines
    assert house.line_quality_score < turtle.line_quality_score
    (_, lq, lq_score, construction, broken, consistency, complexity, cx_score, count, scale, risk, tags,
     notes) = out.result
    assert (lq, lq_score, broken, construction) == (house.line_quality, house.line_quality_score,
                                                     house.broken_lines, house.construction_lines)
    assert (consistency, complexity, cx_score) == (house.stroke_width_consistency, house.complexity,
                                                    house.complexity_score)
    assert isinstance(count, int) and count == house.object_count and scale == house.subject_scale
    assert risk in ("low", "medium", "high") and tags == "house, building"
    assert "fix:" in notes or "keep:" in notes
    panel = out.ui["m4_panel"]
    assert [p["kind"] for p in panel] == ["analysis", "analysis"]
    assert panel[1]["data"] == turtle.to_dict()
    json.dumps(out.ui)  # the websocket sends it as JSON


def test_node_with_pose_keypoint_input(node_cls, batch):
    pts = [0.5, 0.1, 0.9] * 18
    pose = [{"people": [{"pose_keypoints_2d": pts}], "canvas_width": 512, "canvas_height": 512}]
    out = run(node_cls, image=batch[1:], pose_keypoint=pose)
    assert out.result[0][0].anatomy_source == "pose_keypoints"
    with pytest.raises(ValueError, match="pose_keypoint: 2 frames for 1 images"):
        run(node_cls, image=batch[1:], pose_keypoint=pose * 2)


def test_node_errors_name_the_input(node_cls):
    with pytest.raises(ValueError, match="image"):
        run(node_cls, image=torch.zeros(0, 64, 64, 3))
    with pytest.raises(ValueError, match="too small"):
        run(node_cls, image=torch.zeros(1, 8, 8, 3))
    with pytest.raises(ValueError, match="open_clip_model: .* does not exist"):
        run(node_cls, image=torch.ones(1, 64, 64, 3), open_clip_model="/nonexistent/clip")


def test_blank_image_gives_an_empty_result_not_an_error(node_cls):
    out = run(node_cls, image=torch.ones(1, 64, 64, 3))
    assert out.result[0][0].empty and out.result[1] == "empty" and out.result[8] == 0


def test_tiny_open_clip_model_through_the_path_input(node_cls, batch, tmp_path):
    from open_clip.model import CLIP

    from agents.measure.subject_tags import TAG_VOCABULARY

    cfg = {
        "embed_dim": 16,
        "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 8, "head_width": 16},
        "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
    }
    torch.manual_seed(0)
    folder = tmp_path / "tiny_clip"
    folder.mkdir()
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": cfg, "preprocess_cfg": {}}))
    torch.save(CLIP(**cfg).state_dict(), folder / "open_clip_pytorch_model.bin")
    out = run(node_cls, image=batch, open_clip_model=str(folder), subject_tags="ignored")
    for a in out.result[0]:
        assert a.tags_source == "open_clip" and len(a.subject_tags) == 3
        assert set(a.subject_tags) <= set(TAG_VOCABULARY)
    assert out.result[11] == ", ".join(out.result[0][0].subject_tags)


def test_panel_carries_the_rough_pencil_signals(node_cls, fixture_data):
    from agents.measure.rough_scores import ROUGH_SIGNALS

    bag = to_rgb_float(load_image(fixture_data / "sketches" / "bag_scribble.png"))
    out = run(node_cls, image=torch.from_numpy(bag[None]))
    data = out.ui["m4_panel"][0]["data"]
    json.dumps(out.ui)  # the panel must reach the browser as JSON
    for name in ROUGH_SIGNALS:
        assert 0.0 <= data[name] <= 1.0, name
    assert data["heavy_strokes"] > 0.2 and data["line_quality"] != "clean"
    for raw in ("overdrawn_share", "stroke_grain", "stroke_darkness", "hatched_share", "wobble_px", "tapered_ends"):
        assert raw in data["measurements"], raw


def test_mask_composites_hidden_black_pixels_on_white(node_cls, fixture_data):
    """LoadImage's form of a transparent sketch: IMAGE black where hidden, MASK = 1 - alpha (1 = hidden)."""
    rgba = load_image(fixture_data / "sketches" / "house_line.png")
    grey = rgba[:, :, :3].mean(axis=2).astype(np.uint8) if rgba.ndim == 3 else rgba
    alpha = 255 - grey
    hidden_black = np.where(alpha[:, :, None] > 0, grey[:, :, None], 0).repeat(3, axis=2)
    image = torch.from_numpy(hidden_black.astype(np.float32) / 255.0)[None]
    mask = 1.0 - torch.from_numpy(alpha.astype(np.float32) / 255.0)[None]
    on_white = run(node_cls, image=image, mask=mask).result[0][0]
    unmasked = run(node_cls, image=image).result[0][0]
    expected = analyse(np.dstack([hidden_black, alpha]), on_white.image_name)
    assert on_white.to_dict() == expected.to_dict()
    assert unmasked.to_dict()["measurements"] != on_white.to_dict()["measurements"]
    # LoadImage's placeholder for a file without alpha: an all-zero 64x64 mask changes nothing.
    placeholder = run(node_cls, image=image, mask=torch.zeros(1, 64, 64)).result[0][0]
    assert placeholder.to_dict() == unmasked.to_dict()
    with pytest.raises(ValueError, match="^mask: mask 64x64 does not match the image"):
        run(node_cls, image=image, mask=torch.ones(1, 64, 64))
