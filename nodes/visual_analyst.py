"""M4VisualAnalyst: the Visual Analyst agent as a ComfyUI node (thin adapter)."""

from __future__ import annotations

from typing import Any

from comfy_api.v0_0_2 import io

from ..agents.measure.measure_data import measure_data
from ..agents.measure.rough_scores import ROUGH_SIGNALS
from ..agents.measure.subject_tags import load_tagger
from ..agents.measure.visual_analyst import analyse_batch
from ..agents.policy import default_policy
from .convert import image_batch_to_numpy, with_mask
from .types import CATEGORY, Analysis, PoseKeypoint


def _notes_text(notes: dict[str, list[str]]) -> str:
    lines = [f"{kind}: {item}" for kind in ("fix", "remove", "keep") for item in notes.get(kind, [])]
    return "\n".join(lines)


def _panel_marks() -> dict[str, list[float]]:
    """The thresholds drawn on the analysis bars, per 0..1 signal: the policy's that the Director applies,
    and for the rough-pencil signals the level at which the Analyst writes its fix / remove note."""
    pol = default_policy()
    c, m = pol.classify, pol.modifiers
    at = float(measure_data()["notes"]["rough_fix_at"])
    return {"line_quality_score": [m["low_lq_below"], m["high_lq_above"]],
            "construction_lines": [c["construction_threshold"]], "complexity_score": [c["complex_threshold"]],
            "subject_scale": [c["small_below"], c["large_above"]], **{name: [at] for name in ROUGH_SIGNALS}}


class M4VisualAnalyst(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="M4VisualAnalyst",
            is_output_node=True,  # shows its report on the node even with nothing wired downstream
            display_name="M4 Visual Analyst",
            category=f"{CATEGORY}/analysis",
            description=(
                "Measures a rough sketch: line quality, construction and broken lines, stroke-width "
                "consistency, complexity, object count, subject scale, anatomy risk and subject tags, "
                "with notes on what to fix, remove and keep. CPU only, no downloads."
            ),
            inputs=[
                io.Image.Input("image", tooltip="The sketch (a batch is analysed image by image)."),
                PoseKeypoint.Input(
                    "pose_keypoint", optional=True,
                    tooltip="Optional POSE_KEYPOINT from an OpenPose/DWPose preprocessor; anatomy risk then "
                    "comes from the body keypoints instead of the drawing's structure.",
                ),
                io.Mask.Input(
                    "mask", optional=True,
                    tooltip="Optional: LoadImage's MASK (1 = transparent). The sketch is then composited on "
                    "white as `./m4 plan` does, so a transparent file plans the same in both.",
                ),
                io.String.Input(
                    "subject_tags", default="", optional=True,
                    tooltip="Optional comma-separated subject tags (e.g. '1girl, backpack'); used when no "
                    "open_clip model is set.",
                ),
                io.String.Input(
                    "open_clip_model", default="", optional=True,
                    tooltip="Optional path to a local open_clip model: a folder with open_clip_config.json and "
                    "weights, or a model-config .json with one weights file beside it. Never downloads.",
                ),
            ],
            outputs=[
                Analysis.Output("analysis", display_name="analysis",
                                tooltip="The full analysis of every image (list, one per batch item)."),
                io.String.Output("line_quality", display_name="line_quality",
                                 tooltip="First image: messy / structured / clean (or empty)."),
                io.Float.Output("line_quality_score", display_name="line_quality_score",
                                tooltip="First image: 0..1, 1 = clean confident lines."),
                io.Float.Output("construction_lines", display_name="construction_lines",
                                tooltip="First image: 0..1 amount of faint construction lines."),
                io.Float.Output("broken_lines", display_name="broken_lines",
                                tooltip="First image: 0..1 amount of gapped / fragmented lines."),
                io.Float.Output(
                    "stroke_width_consistency", display_name="stroke_width_consistency",
                    tooltip="First image: 0..1, 1 = one even stroke width.",
                ),
                io.String.Output("complexity", display_name="complexity", tooltip="First image: simple / complex."),
                io.Float.Output("complexity_score", display_name="complexity_score",
                                tooltip="First image: 0..1 drawing complexity."),
                io.Int.Output("object_count", display_name="object_count",
                              tooltip="First image: number of separate objects drawn."),
                io.Float.Output(
                    "subject_scale", display_name="subject_scale",
                    tooltip="First image: share of the canvas the main subject's box covers.",
                ),
                io.String.Output("anatomy_risk", display_name="anatomy_risk",
                                 tooltip="First image: low / medium / high."),
                io.String.Output(
                    "tags", display_name="subject_tags",
                    tooltip="First image: subject tags, comma-separated (from open_clip or your text).",
                ),
                io.String.Output("notes", display_name="notes",
                                 tooltip="First image: what to fix, remove and keep, one per line."),
            ],
        )

    @classmethod
    def execute(
        cls,
        image: Any,
        pose_keypoint: Any = None,
        subject_tags: str = "",
        open_clip_model: str = "",
        mask: Any = None,
    ) -> io.NodeOutput:
        arrays = with_mask(image_batch_to_numpy(image, "image"), mask, "mask")
        path = (open_clip_model or "").strip()
        tagger = load_tagger(path) if path else None
        results = analyse_batch(arrays, pose=pose_keypoint, text_tags=subject_tags, tagger=tagger)
        a = results[0]
        marks = _panel_marks()
        panel = [{"kind": "analysis", "title": f"Visual Analyst: {r.image_name}", "data": r.to_dict(), "marks": marks}
                 for r in results]
        return io.NodeOutput(
            results, a.line_quality, a.line_quality_score, a.construction_lines, a.broken_lines,
            a.stroke_width_consistency, a.complexity, a.complexity_score, a.object_count, a.subject_scale,
            a.anatomy_risk, ", ".join(a.subject_tags), _notes_text(a.notes),
            ui={"m4_panel": panel},
        )


NODES = [M4VisualAnalyst]
