"""M4KeyframeImputer (keys + indices -> full sequence, keep mask, report) and M4InbetweenNoiseMask
(keep mask -> a LATENT's per-frame noise_mask, so the stock KSampler refines only the in-betweens)."""

from __future__ import annotations

from typing import Any

import comfy.model_management
import comfy.utils
import numpy as np
import torch
from comfy_api.v0_0_2 import io

from ..agents.inbetween.config import default_config
from ..agents.inbetween.flow import FLOW_METHODS
from ..agents.inbetween.imputer import iter_chunks, keep_mask, prepare
from ..agents.inbetween.keys import InbetweenInputError
from ..agents.inbetween.noise_mask import latent_noise_mask
from ..agents.inbetween.report import Reporter
from .combo_check import combo_verdict, require_combos
from .convert import image_batch_to_numpy
from .types import CATEGORY, InbetweenReport

SUBCATEGORY = f"{CATEGORY}/inbetween"
PANEL_FRAMES = 24  # per-frame rows shown on the node (the report output carries every frame)
MODE_ORDER = ("line_aware", "line_aware_tone", "flow", "dissolve", "hold", "external")


def _masks(mask: Any) -> list[np.ndarray] | None:
    if mask is None:
        return None
    if not isinstance(mask, torch.Tensor) or mask.ndim not in (2, 3):
        raise InbetweenInputError("mask: expected a MASK tensor [batch, height, width]")
    m = mask.detach().to("cpu", torch.float32)
    m = m[None] if m.ndim == 2 else m
    return [np.ascontiguousarray(x) for x in m.numpy()]


def _panel(report: dict[str, Any]) -> dict[str, Any]:
    rows = [
        {"frame": f["index"], "key": f["is_key"], "keep": round(f["keep"], 3),
         "cd": round(f["chamfer_nearest_key"], 5), "ink": round(f["ink_ratio"], 2),
         "grey": round(f["grey_share"], 3), "unsafe": ", ".join(f["unsafe"])}
        for f in report["frames"][:PANEL_FRAMES]
    ]
    frames = report["frames"]
    # every frame for the drawn strip (web/m4_panels.js renderInbetween; it marks key_indices and
    # unsafe_frames): distance to the nearest key and keep weight; the table rows above stop at PANEL_FRAMES
    chart = {"cd": [round(f["chamfer_nearest_key"], 5) for f in frames],
             "keep": [round(f["keep"], 3) for f in frames]}
    return {"mode": report["mode"], "length": report["length"], "key_indices": report["key_indices"],
            "keys_exact": report["keys_exact"], "mean_chamfer_nearest_key": report["mean_chamfer_nearest_key"],
            "max_grey_share": report["max_grey_share"], "unsafe_frames": report["unsafe_frames"], "frames": rows,
            "chart": chart}


class M4KeyframeImputer(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        cap = int(default_config().limits["max_length"])
        return io.Schema(
            node_id="M4KeyframeImputer",
            display_name="M4 Keyframe Imputer",
            category=SUBCATEGORY,
            is_output_node=True,  # shows its report on the node even with nothing wired downstream
            description=(
                "Line-art in-betweening as imputation: keyframes at given frame indices stay bit-identical, "
                "the frames between them are made by hold, cross-dissolve, optical flow on the ink's distance "
                "field, or line-aware compositing (no doubled lines, no grey ghosts); 'external' takes any "
                "interpolator's frames and only re-imposes the keys. Also returns a per-frame keep mask "
                "(keys 0) for M4 Inbetween Noise Mask and a per-frame report."
            ),
            inputs=[
                io.Image.Input("keyframes", tooltip="The key drawings, in order (one size)."),
                io.String.Input("key_indices", default="",
                                tooltip="Frame index of each key, e.g. \"0,6,14,24\" (increasing); empty or "
                                "'even' spreads the keys evenly over the length."),
                io.Int.Input("length", default=17, min=2, max=cap, tooltip="Frames in the output sequence."),
                io.Combo.Input("mode", options=list(MODE_ORDER), default="line_aware",
                               tooltip="How in-betweens are made (see the help page)."),
                io.Combo.Input("flow_method", options=list(FLOW_METHODS), default="dis",
                               tooltip="OpenCV dense flow for the flow and line_aware modes."),
                io.Boolean.Input("soft_mask", default=True,
                                 tooltip="On: the keep mask grows with distance to the nearest key; off: 1 for "
                                 "every in-between. Keys are 0 either way."),
                io.Mask.Input("mask", optional=True,
                              tooltip="Optional transparency of the keys (LoadImage's MASK, one per key): "
                              "keys are composited on white first."),
                io.Image.Input("frames", optional=True,
                               tooltip="external mode: an upstream interpolator's frames, exactly `length`."),
                io.Boolean.Input("line_quality", default=True, optional=True,
                                 tooltip="Add the Line Quality Analyzer's broken/dotted scores to the report "
                                 "(slower)."),
            ],
            outputs=[
                io.Image.Output("images", display_name="images", tooltip="The full sequence, keys exact."),
                io.Mask.Output("keep_mask", display_name="keep_mask",
                               tooltip="Per frame 0 (key, keep) .. 1 (free to change)."),
                io.String.Output("indices_used", display_name="key_indices", tooltip="The key indices used."),
                InbetweenReport.Output("report", display_name="report", tooltip="Per-frame report (data)."),
            ],
        )

    @classmethod
    def validate_inputs(cls, mode: str | None = None, flow_method: str | None = None) -> bool | str:
        return combo_verdict(cls, mode=mode, flow_method=flow_method)  # nodes/combo_check.py

    @classmethod
    def execute(cls, keyframes: Any, key_indices: str, length: int, mode: str, flow_method: str,
                soft_mask: bool, mask: Any = None, frames: Any = None, line_quality: bool = True) -> io.NodeOutput:
        require_combos(cls, {"mode": mode, "flow_method": flow_method}, InbetweenInputError)
        keys = image_batch_to_numpy(keyframes, "keyframes")
        if frames is not None and mode != "external":
            raise InbetweenInputError(f"frames: given, but mode is {mode!r}; only the external mode uses them "
                                      "(switch the mode or unplug frames)")
        external = image_batch_to_numpy(frames, "frames") if frames is not None else None
        req = prepare(keys, key_indices, length, mode, flow_method=flow_method, masks=_masks(mask),
                      external=external)
        keep = keep_mask(req.indices, req.length, soft_mask, req.config)
        reporter = Reporter(req, keep, line_quality=bool(line_quality))
        h, w = req.size
        out = torch.empty((req.length, h, w, 3), dtype=torch.float32)
        bar = comfy.utils.ProgressBar(req.length)
        for start, chunk in iter_chunks(req):
            comfy.model_management.throw_exception_if_processing_interrupted()
            out[start:start + len(chunk)] = torch.from_numpy(chunk)
            for i, frame in enumerate(chunk):
                reporter.add(start + i, frame)
            bar.update(len(chunk))
        keep_t = torch.from_numpy(keep)[:, None, None].expand(req.length, h, w).contiguous()
        report = reporter.result()
        data = report.to_dict()
        indices = ",".join(str(i) for i in req.indices)
        return io.NodeOutput(
            out, keep_t, indices, report,
            ui={"m4_panel": [{"kind": "inbetween", "title": "Keyframe Imputer", "data": _panel(data)}]},
        )


class M4InbetweenNoiseMask(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="M4InbetweenNoiseMask",
            display_name="M4 Inbetween Noise Mask",
            category=SUBCATEGORY,
            description=(
                "Turns the imputer's keep mask into the LATENT's per-frame noise_mask: keys 0, so ComfyUI's "
                "own KSampler re-imposes them at every step and only the in-betweens are refined, each as "
                "strongly as its mask value (growing with distance to the nearest key)."
            ),
            inputs=[
                io.Latent.Input("latent", tooltip="The encoded sequence: an image batch [frames, C, H, W] or a "
                                "video latent [1, C, T, H, W]."),
                io.Mask.Input("keep_mask", tooltip="The imputer's keep mask, one per frame."),
                io.Float.Input("strength", default=1.0, min=0.0, max=1.0, step=0.01,
                               tooltip="Scales every in-between's mask value (keys stay 0)."),
                io.Int.Input("frames_per_latent", default=1, min=1, max=16,
                             tooltip="Video latents: frames per latent frame after the first (4 for Wan). "
                             "1 for image batches and uncompressed video latents."),
                io.Boolean.Input("shared_noise", default=False,
                                 tooltip="Image batches: every frame gets the same KSampler noise (batch_index "
                                 "all 0), so refined in-betweens flicker less. Video latents share nothing."),
            ],
            outputs=[io.Latent.Output(display_name="latent", tooltip="The latent with its per-frame noise_mask.")],
        )

    @classmethod
    def execute(cls, latent: Any, keep_mask: Any, strength: float, frames_per_latent: int,
                shared_noise: bool = False) -> io.NodeOutput:
        if not isinstance(latent, dict) or not isinstance(latent.get("samples"), torch.Tensor):
            raise InbetweenInputError("latent: expected a LATENT with 'samples'")
        if not isinstance(keep_mask, torch.Tensor) or keep_mask.ndim not in (1, 2, 3):
            raise InbetweenInputError("keep_mask: expected a MASK tensor [frames, height, width]")
        m = keep_mask.detach().to("cpu", torch.float32)
        m = m.reshape(m.shape[0], -1) if m.ndim > 1 else m[:, None]
        values = m.max(dim=1).values.numpy()  # one value per frame: a key (all 0) stays exactly 0
        shape = tuple(latent["samples"].shape)
        noise_mask = latent_noise_mask(values, shape, float(strength), int(frames_per_latent))
        out = dict(latent)
        out["noise_mask"] = torch.from_numpy(noise_mask)
        if shared_noise and len(shape) == 4:
            # comfy.sample.prepare_noise draws one noise per distinct batch_index: all 0 = one shared noise.
            out["batch_index"] = [0] * shape[0]
        return io.NodeOutput(out)


NODES = [M4KeyframeImputer, M4InbetweenNoiseMask]
