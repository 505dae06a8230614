"""Issue 11 items 7 and 10 against the real ComfyUI test server: an unknown sampler_name on M4 Adaptive
KSampler is refused at /prompt, naming the node and the input."""

from __future__ import annotations

import pytest

from agents.runtime.comfyui_client import ComfyClient, PromptRejected
from host.server import txt2img_prompt

ADAPTIVE = {
    "schedule": "s_curve", "cfg_min": 1.0, "cfg_max": 12.0, "skip_below": 1.5, "quality_adjust": True,
    "agreement_cutoff": 0.0, "interval_sigma_lo": 0.28, "interval_sigma_hi": 5.42, "early_stop": False,
    "early_stop_tolerance": 0.02, "base_source": "sampler cfg",
}


def test_a_bogus_sampler_name_is_refused_at_prompt_time(comfy_server) -> None:
    wf = txt2img_prompt(comfy_server.checkpoint, steps=2, prefix="m4_bogus")
    del wf["3"], wf["8"], wf["9"]
    wf["40"] = {"class_type": "M4AdaptiveKSampler", "inputs": {
        "model": ["4", 0], "seed": 1, "steps": 2, "cfg": 6.0, "sampler_name": "bogus", "scheduler": "karras",
        "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0], "denoise": 1.0, **ADAPTIVE}}
    wf["41"] = {"class_type": "PreviewImage", "inputs": {"images": ["40", 3]}}
    with ComfyClient(comfy_server.url) as client, pytest.raises(PromptRejected) as caught:
        client.submit(wf)
    assert "node 40 (M4AdaptiveKSampler)" in str(caught.value) and "sampler_name: 'bogus'" in str(caught.value)
