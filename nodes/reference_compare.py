"""M4ReferenceCompare: the Reference Compare agent as a ComfyUI node (thin adapter)."""

from __future__ import annotations

from typing import Any

import torch
from comfy_api.v0_0_2 import io

from ..agents.measure.embeddings import load_open_clip
from ..agents.measure.reference_compare import compare
from ..agents.policy import default_policy
from .convert import image_batch_to_numpy, with_mask
from .types import CATEGORY, ReferenceReport


def _clip_vision_embed(clip_vision: Any, image: torch.Tensor) -> torch.Tensor:
    """The CLIP_VISION model's projected embedding of the first image of a batch."""
    return clip_vision.encode_image(image[:1, :, :, :3]).image_embeds[0]


def _panel_marks() -> dict[str, list[float]]:
    """The policy thresholds the Director's reference mode applies, per 0..1 signal (drawn on its bar)."""
    rm = default_policy().reference_modes
    return {"conflict_penalty": [rm["identity_max_conflict"], rm["style_max_conflict"], rm["guarded_conflict"]],
            "reference_final_score": [rm["off_below"], rm["identity_min_r"]]}


class M4ReferenceCompare(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="M4ReferenceCompare",
            is_output_node=True,  # shows its report on the node even with nothing wired downstream
            display_name="M4 Reference Compare",
            category=f"{CATEGORY}/analysis",
            description=(
                "Measures how far a style reference can be trusted for a sketch: similarity, text and "
                "image conflict (hair/eye colour, character count, accessories; dark accessory shapes in "
                "the head region), style distance, and whether the reference is coloured. "
                "reference_final_score = similarity x (1 - conflict_penalty). CPU only, no downloads."
            ),
            inputs=[
                io.Image.Input("sketch", tooltip="The sketch (the first image of a batch is compared)."),
                io.Image.Input(
                    "reference", optional=True,
                    tooltip="Optional style reference (first image of a batch). Without it the report says "
                    "'no reference' and reference_final_score is 0.",
                ),
                io.ClipVision.Input(
                    "clip_vision", optional=True,
                    tooltip="Optional CLIP_VISION model (e.g. the one loaded for IP-Adapter): similarity then "
                    "comes from its image embeddings instead of line-structure features.",
                ),
                io.Mask.Input(
                    "sketch_mask", optional=True,
                    tooltip="Optional: the sketch's LoadImage MASK (1 = transparent); composited on white as "
                    "`./m4 plan` does.",
                ),
                io.Mask.Input(
                    "reference_mask", optional=True,
                    tooltip="Optional: the reference's LoadImage MASK (1 = transparent); composited on white.",
                ),
                io.String.Input(
                    "open_clip_model", default="", optional=True,
                    tooltip="Optional path to a local open_clip model folder (open_clip_config.json + weights) "
                    "for embedding similarity; used only when no clip_vision is connected. Never downloads.",
                ),
                io.String.Input(
                    "sketch_tags", default="", optional=True, multiline=True,
                    tooltip="Optional comma-separated tags of the sketch (e.g. '1girl, black hair, glasses').",
                ),
                io.String.Input(
                    "reference_tags", default="", optional=True, multiline=True,
                    tooltip="Optional comma-separated tags of the reference; contradictions with the sketch's "
                    "tags raise the conflict penalty.",
                ),
            ],
            outputs=[
                ReferenceReport.Output("report", display_name="report",
                                       tooltip="The full Reference Compare report, for the Director."),
                io.Float.Output("similarity", display_name="similarity",
                                tooltip="0..1 how alike sketch and reference are."),
                io.Float.Output("conflict_penalty", display_name="conflict_penalty",
                                tooltip="0..1 max of text conflict and weighted image conflict."),
                io.Float.Output("style_distance", display_name="style_distance",
                                tooltip="0..1 edge-density and contrast difference (D)."),
                io.Float.Output("accessory_conflict", display_name="accessory_conflict",
                                tooltip="0..1 head-region dark-shape mismatch (AC)."),
                io.Float.Output(
                    "reference_final_score", display_name="reference_final_score",
                    tooltip="0..1 reference reliability R = similarity x (1 - conflict).",
                ),
                io.Boolean.Output("colored", display_name="colored",
                                  tooltip="True when the reference is a coloured picture (CR flag)."),
            ],
        )

    @classmethod
    def execute(
        cls,
        sketch: Any,
        reference: Any = None,
        clip_vision: Any = None,
        open_clip_model: str = "",
        sketch_tags: str = "",
        reference_tags: str = "",
        sketch_mask: Any = None,
        reference_mask: Any = None,
    ) -> io.NodeOutput:
        s = with_mask(image_batch_to_numpy(sketch, "sketch")[:1], sketch_mask, "sketch_mask")[0]
        r = (with_mask(image_batch_to_numpy(reference, "reference")[:1], reference_mask, "reference_mask")[0]
             if reference is not None else None)
        emb_s: Any = None
        emb_r: Any = None
        source = "classical"
        path = (open_clip_model or "").strip()
        if r is not None and clip_vision is not None:
            emb_s, emb_r = _clip_vision_embed(clip_vision, sketch), _clip_vision_embed(clip_vision, reference)
            source = "clip_vision"
        elif r is not None and path:
            encoder = load_open_clip(path)
            emb_s, emb_r = encoder.embed(s, "sketch"), encoder.embed(r, "reference")
            source = "open_clip"
        report = compare(
            s, r, sketch_tags=sketch_tags, reference_tags=reference_tags,
            sketch_embedding=emb_s, reference_embedding=emb_r,
            similarity_source=source if emb_s is not None else "auto",
        )
        panel = [{"kind": "reference", "title": "Reference Compare", "data": report.to_dict(), "marks": _panel_marks()}]
        return io.NodeOutput(
            report, report.similarity, report.conflict_penalty, report.style_distance,
            report.accessory_conflict, report.reference_final_score, report.colored,
            ui={"m4_panel": panel},
        )


NODES = [M4ReferenceCompare]
