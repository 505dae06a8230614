"""Tier 3: the audio-pattern example on a real ComfyUI server: core's LoadAudio decodes a generated WAV,
M4 Audio Features and M4 CPPN Frames run, and core's CreateVideo + SaveVideo write a video with the sound."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import av
import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(REPO / "tests" / "pure"))
import build_workflows  # noqa: E402
from patterns_signals import click_track, write_wav  # noqa: E402

from host.ui_prompt import ui_to_api  # noqa: E402

SR, SECONDS = 22050, 2.0
ONSETS = np.array([0.25, 0.75, 1.25, 1.75])


def test_core_audio_and_video_nodes_load(comfy_server):
    info = comfy_server.object_info()
    missing = {"LoadAudio", "SaveAudio", "CreateVideo", "SaveVideo", "M4AudioFeatures", "M4CPPNFrames"} - info.keys()
    assert not missing, f"nodes missing: {missing}; server log:\n{comfy_server.log_tail()}"




def test_audio_patterns_example_runs_and_saves_a_video_with_sound(comfy_server, tmp_path):
    wav = tmp_path / build_workflows.AUDIO_FILE
    write_wav(wav, click_track(ONSETS, SR, SECONDS), SR)
    assert comfy_server.upload_image(wav) == wav.name
    wf = json.loads((REPO / "workflows" / "M4_Example_Audio_Patterns.json").read_text(encoding="utf-8"))
    prompt = ui_to_api(wf, build_workflows.load_snapshot(), build_workflows.WIDGET_TYPES)
    frames = next(k for k, v in prompt.items() if v["class_type"] == "M4CPPNFrames")
    prompt[frames]["inputs"].update(width=48, height=32)  # small: the example's 512 px is for a real run
    entry = comfy_server.run(prompt, timeout=300)
    assert entry["status"]["status_str"] == "success", comfy_server.log_tail()
    saved = next(v for k, v in entry["outputs"].items() if prompt[k]["class_type"] == "SaveVideo")
    item = saved["images"][0]
    data = comfy_server.view(item["filename"], item.get("subfolder", ""), item.get("type", "output"))
    with av.open(io.BytesIO(data)) as container:
        video = container.streams.video[0]
        assert container.streams.audio, "the saved video has no sound"
        n = sum(1 for _ in container.decode(video=0))
        assert (video.codec_context.width, video.codec_context.height) == (48, 32)
    assert n == round(SECONDS * 30.0)
    features = next(v for k, v in entry["outputs"].items() if prompt[k]["class_type"] == "M4AudioFeatures")
    panel = features["m4_panel"][0]
    assert panel["kind"] == "audio_features" and panel["data"]["frames"] == 60 and panel["data"]["onsets"] == 4
