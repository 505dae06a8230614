"""TEST STAND-INS for third-party node packs that cannot be installed here. Never shipped in the pack.

cubiq/ComfyUI_IPAdapter_plus and Fannovel16/comfyui_controlnet_aux download weights at run time
and need models this machine does not have. These nodes declare exactly the inputs and outputs
those packs declare (recorded contracts: IPAdapter_plus @9d076a3, controlnet_aux
@e8b689a, in real_contracts.json beside this file; tests/pure/test_standin_contracts.py holds these
classes and scripts/object_info_snapshot.json to it) so the M4 templates validate and execute through
the real ComfyUI executor. Behaviour
is a pass-through: the IP-Adapter nodes return a clone of the model carrying the values they were
given (so a test can read what arrived), the pose preprocessor returns a black pose map and an
empty POSE_KEYPOINT frame. Nothing here says anything about image quality.

Loaded by the test server as the custom-node folder `m4_test_standins` (V1 mappings on purpose:
that is how those packs register).
"""

from __future__ import annotations

import torch

IPADAPTER_PRESETS = [
    "LIGHT - SD1.5 only (low strength)", "STANDARD (medium strength)", "VIT-G (medium strength)",
    "PLUS (high strength)", "PLUS FACE (portraits)", "FULL FACE - SD1.5 only (portraits stronger)",
]
WEIGHT_TYPES = [
    "linear", "ease in", "ease out", "ease in-out", "reverse in-out", "weak input", "weak output", "weak middle",
    "strong middle", "style transfer", "composition", "strong style transfer", "style and composition",
    "style transfer precise", "composition precise",
]
COMBINE_EMBEDS = ["concat", "add", "subtract", "average", "norm average"]
EMBEDS_SCALING = ["V only", "K+V", "K+V w/ C penalty", "K+mean(V) w/ C penalty"]
STANDIN_KEY = "m4_standin_ipadapter"


class IPAdapterUnifiedLoader:
    """Stand-in for IPAdapter_plus's IPAdapterUnifiedLoader (same inputs/outputs)."""

    @classmethod
    def INPUT_TYPES(cls):  # noqa: N802 (ComfyUI's V1 name)
        return {"required": {"model": ("MODEL",), "preset": (IPADAPTER_PRESETS,)},
                "optional": {"ipadapter": ("IPADAPTER",)}}

    RETURN_TYPES = ("MODEL", "IPADAPTER")
    RETURN_NAMES = ("model", "ipadapter")
    FUNCTION = "load_models"
    CATEGORY = "ipadapter (test stand-in)"

    def load_models(self, model, preset, ipadapter=None):
        return (model, {"standin": True, "preset": preset})


class IPAdapterAdvanced:
    """Stand-in for IPAdapter_plus's IPAdapterAdvanced (same inputs/outputs)."""

    @classmethod
    def INPUT_TYPES(cls):  # noqa: N802
        return {
            "required": {
                "model": ("MODEL",), "ipadapter": ("IPADAPTER",), "image": ("IMAGE",),
                "weight": ("FLOAT", {"default": 1.0, "min": -1, "max": 5, "step": 0.05}),
                "weight_type": (WEIGHT_TYPES,),
                "combine_embeds": (COMBINE_EMBEDS,),
                "start_at": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 1.0, "step": 0.001}),
                "end_at": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.001}),
                "embeds_scaling": (EMBEDS_SCALING,),
            },
            "optional": {"image_negative": ("IMAGE",), "attn_mask": ("MASK",), "clip_vision": ("CLIP_VISION",)},
        }

    RETURN_TYPES = ("MODEL",)
    FUNCTION = "apply_ipadapter"
    CATEGORY = "ipadapter (test stand-in)"

    def apply_ipadapter(self, model, ipadapter, image, weight, weight_type, combine_embeds, start_at, end_at,
                        embeds_scaling, image_negative=None, attn_mask=None, clip_vision=None):
        m = model.clone()
        record = {"weight": weight, "end_at": end_at, "start_at": start_at, "weight_type": weight_type}
        to = m.model_options.setdefault("transformer_options", {})
        to[STANDIN_KEY] = list(to.get(STANDIN_KEY, [])) + [record]
        return (m,)


class OpenposePreprocessor:
    """Stand-in for comfyui_controlnet_aux's OpenposePreprocessor (same inputs/outputs)."""

    @classmethod
    def INPUT_TYPES(cls):  # noqa: N802
        toggle = (["enable", "disable"], {"default": "enable"})
        return {
            "required": {"image": ("IMAGE",)},
            "optional": {"detect_hand": toggle, "detect_body": toggle, "detect_face": toggle,
                         "resolution": ("INT", {"default": 512, "min": 64, "max": 16384, "step": 64}),
                         "scale_stick_for_xinsr_cn": (["disable", "enable"], {"default": "disable"})},
        }

    RETURN_TYPES = ("IMAGE", "POSE_KEYPOINT")
    FUNCTION = "estimate_pose"
    CATEGORY = "ControlNet Preprocessors (test stand-in)"

    def estimate_pose(self, image, detect_hand="enable", detect_body="enable", detect_face="enable",
                      scale_stick_for_xinsr_cn="disable", resolution=512):
        b, h, w, _ = image.shape
        frames = [{"people": [], "canvas_width": int(w), "canvas_height": int(h)} for _ in range(b)]
        return (torch.zeros_like(image), frames)


NODE_CLASS_MAPPINGS = {
    "IPAdapterUnifiedLoader": IPAdapterUnifiedLoader,
    "IPAdapterAdvanced": IPAdapterAdvanced,
    "OpenposePreprocessor": OpenposePreprocessor,
}
NODE_DISPLAY_NAME_MAPPINGS = {k: f"{k} (test stand-in)" for k in NODE_CLASS_MAPPINGS}
