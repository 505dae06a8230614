"""A bad combo value on a pack node other than the sampler (M4 Keyframe Imputer's mode) is refused by the real
ComfyUI server at /prompt, naming node and input (ComfyUI 0.3.75 checks no V3 combo itself: the node's
validate_inputs does, nodes/combo_check.py); the same graph with a real mode runs."""

from __future__ import annotations

from typing import Any

import pytest

from agents.runtime.comfyui_client import ComfyClient, PromptRejected


def _imputer_prompt(mode: str) -> dict[str, Any]:
    return {
        # two white keys with a black square drawn on them (core nodes only: no file to load)
        "1": {"class_type": "EmptyImage", "inputs": {"width": 32, "height": 32, "batch_size": 2, "color": 0xFFFFFF}},
        "2": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},
        "3": {"class_type": "ImageCompositeMasked", "inputs": {"destination": ["1", 0], "source": ["2", 0],
                                                               "x": 12, "y": 12, "resize_source": False}},
        "50": {"class_type": "M4KeyframeImputer", "inputs": {
            "keyframes": ["3", 0], "key_indices": "0,4", "length": 5, "mode": mode, "flow_method": "dis",
            "soft_mask": True, "line_quality": False}},
        "51": {"class_type": "PreviewImage", "inputs": {"images": ["50", 0]}},
    }


def test_a_bogus_inbetween_mode_is_refused_at_prompt_time(comfy_server) -> None:
    with ComfyClient(comfy_server.url) as client:
        with pytest.raises(PromptRejected) as caught:
            client.submit(_imputer_prompt("bogus"))
        message = str(caught.value)
        assert "node 50 (M4KeyframeImputer)" in message and "mode: 'bogus' is not one of line_aware" in message
        assert "flow_method: " not in message  # only the bad input is named
        entry = client.run(_imputer_prompt("hold"), timeout=120)  # the refusal was the combo, nothing else
        assert entry["status"]["status_str"] == "success"
