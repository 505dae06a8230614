"""M4AudioFeatures and M4CPPNFrames through the real ComfyUI-imported pack and the V3 schema."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from host.inprocess import run_node as run

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pure"))
from patterns_signals import click_track  # noqa: E402

MODULE = "m4_director.nodes.patterns"
SR, FPS = 22050, 24.0
ONSETS = np.array([0.3, 0.9, 1.5])


@pytest.fixture(scope="module")
def mod(pack):
    importlib.import_module(MODULE)
    assert "patterns" in sys.modules["m4_director.nodes"]._FAMILIES
    return sys.modules[MODULE]




def _audio(channels: int = 2, duration: float = 2.0) -> dict:
    mono = torch.from_numpy(click_track(ONSETS, SR, duration))
    return {"waveform": mono[None, None].repeat(1, channels, 1), "sample_rate": SR}


@pytest.fixture(scope="module")
def features_out(mod):
    return run(mod.M4AudioFeatures, audio=_audio(), fps=FPS)


def test_schemas_have_tooltips_and_list_outputs(mod):
    for cls in mod.NODES:
        schema = cls.GET_SCHEMA()
        assert schema.node_id in {"M4AudioFeatures", "M4CPPNFrames", "M4CLIPGuidedCPPN"}
        assert schema.category.startswith("M4 Director")
        for item in [*schema.inputs, *schema.outputs]:
            assert item.tooltip, (schema.node_id, item.id)
    feats = mod.M4AudioFeatures
    assert tuple(feats.RETURN_TYPES[:4]) == ("M4_AUDIO_FEATURES", "INT", "FLOAT", "IMAGE")
    assert tuple(feats.OUTPUT_IS_LIST) == (False,) * 4 + (True,) * 7
    assert mod.M4CPPNFrames.INPUT_TYPES()["required"]["features"][0] == "M4_AUDIO_FEATURES"


def test_audio_features_node_outputs_one_time_base(features_out):
    feats, n, fps, plot, onset, *rest = features_out.result
    assert n == round(2.0 * FPS) == feats.n_frames and fps == FPS
    assert isinstance(onset, list) and len(onset) == n and all(isinstance(v, float) for v in onset)
    assert all(len(r) == n for r in rest)
    peaks = [i for i in range(1, n) if onset[i] >= 0.5 > onset[i - 1]] + ([0] if onset[0] >= 0.5 else [])
    assert sorted(peaks) == list(np.floor(ONSETS * FPS).astype(int))
    assert plot.shape[0] == 1 and plot.shape[3] == 3 and plot.dtype == torch.float32 and plot.std() > 0.01
    panel = features_out.ui["m4_panel"][0]
    assert panel["kind"] == "audio_features" and panel["data"]["frames"] == n and panel["data"]["onsets"] == 3


def test_audio_features_node_bad_audio_is_one_line(mod):
    bad = _audio()
    bad["waveform"][0, 0, 100] = float("nan")
    with pytest.raises(ValueError, match="audio: non-finite sample"):
        run(mod.M4AudioFeatures, audio=bad, fps=FPS)
    with pytest.raises(ValueError, match="audio: expected ComfyUI AUDIO"):
        run(mod.M4AudioFeatures, audio={"samples": 1}, fps=FPS)


def _frames(mod, feats, **kw):
    args = {"features": feats, "preset": "pulse", "pattern": "from preset", "palette": "from preset",
            "width": 32, "height": 24, "seed": 1, "start_frame": 0, "frame_count": 0} | kw
    return run(mod.M4CPPNFrames, **args)


def test_cppn_frames_one_per_audio_frame_with_progress(mod, features_out, comfy):
    import comfy.utils

    calls = []
    comfy.utils.set_progress_bar_global_hook(lambda value, total, preview, node_id=None: calls.append((value, total)))
    try:
        out = _frames(mod, features_out.result[0], pattern="voronoi", palette="neon")
    finally:
        comfy.utils.set_progress_bar_global_hook(None)
    images, fps = out.result
    assert images.shape == (features_out.result[1], 24, 32, 3) and fps == FPS
    assert torch.isfinite(images).all() and images.std() > 0.02
    assert calls and calls[-1][0] == calls[-1][1]
    again = _frames(mod, features_out.result[0], pattern="voronoi", palette="neon").result[0]
    assert torch.equal(images, again)
    part = _frames(mod, features_out.result[0], pattern="voronoi", palette="neon", start_frame=10,
                   frame_count=5).result[0]
    assert torch.allclose(part, images[10:15], atol=1e-6)


def test_cppn_frames_palette_from_image(mod, features_out):
    ref = torch.zeros(1, 16, 16, 3)
    ref[:, :, :8] = torch.tensor([0.9, 0.1, 0.1])
    ref[:, :, 8:] = torch.tensor([0.1, 0.1, 0.8])
    images = _frames(mod, features_out.result[0], palette="from palette_image", palette_image=ref,
                     frame_count=3).result[0]
    assert images[..., 1].max() < 0.2  # red-to-blue gradient: no green anywhere
    with pytest.raises(ValueError, match="palette_image: palette 'from palette_image' needs an image"):
        _frames(mod, features_out.result[0], palette="from palette_image")


def test_cppn_frames_is_interruptible(mod, features_out, comfy):
    import comfy.model_management as mm

    mm.interrupt_current_processing(True)
    try:
        with pytest.raises(mm.InterruptProcessingException):
            _frames(mod, features_out.result[0])
    finally:
        mm.interrupt_current_processing(False)


def test_cppn_frames_bad_inputs(mod, features_out):
    with pytest.raises(ValueError, match="width: expected an integer number of pixels in"):
        _frames(mod, features_out.result[0], width=8)
    with pytest.raises(ValueError, match="features: expected M4_AUDIO_FEATURES"):
        _frames(mod, {"onset": [1.0]})


def test_clip_guided_node_with_a_tiny_local_model(mod, features_out, tmp_path):
    from host.tiny_open_clip import save_tiny_open_clip

    save_tiny_open_clip(tmp_path)
    args = {"features": features_out.result[0], "open_clip_model_path": str(tmp_path), "prompt": "red spirals",
            "preset": "pulse", "pattern": "from preset", "width": 32, "height": 24, "seed": 0, "steps": 4,
            "lr": 0.05, "optimise_size": 16, "reactivity_weight": 1.0}
    images, fps, report = run(mod.M4CLIPGuidedCPPN, **args).result
    assert images.shape == (features_out.result[1], 24, 32, 3) and fps == FPS and "over 4 steps" in report
    assert torch.isfinite(images).all()
    plain = _frames(mod, features_out.result[0], width=32, height=24, seed=0).result[0]
    assert not torch.allclose(images, plain)  # the optimised weights, not the seed's
    assert "cached" in run(mod.M4CLIPGuidedCPPN, **args).result[2]
    with pytest.raises(ValueError, match="open_clip_model_path: folder not found"):
        run(mod.M4CLIPGuidedCPPN, **(args | {"open_clip_model_path": str(tmp_path / "missing")}))
    # ComfyUI's executor runs every node under torch.inference_mode(): the optimisation must still get
    # gradients there (it raised "element 0 of tensors does not require grad" in the server before).
    with torch.inference_mode():
        out = run(mod.M4CLIPGuidedCPPN, **(args | {"prompt": "blue waves under inference mode"}))
    assert "over 4 steps" in out.result[2]
