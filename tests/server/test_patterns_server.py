"""Tier 3: the audio-pattern family on a real ComfyUI server: core's audio and video nodes load beside it."""

from __future__ import annotations


def test_core_audio_and_video_nodes_load(comfy_server):
    info = comfy_server.object_info()
    missing = {"LoadAudio", "SaveAudio", "CreateVideo", "SaveVideo"} - info.keys()
    assert not missing, f"core nodes missing: {missing}; server log:\n{comfy_server.log_tail()}"
