"""Visual Analyst (seed 004 sections 3A and 12): what state a sketch is in, as 0..1 signals.

analyse() takes one drawing as a numpy array (any of the shapes agents.measure.imaging accepts) and
returns a VisualAnalysis. Scores and their thresholds are defined in web/docs/M4VisualAnalyst.md;
the constants below are the single source of those numbers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .analysis_types import VisualAnalysis
from .imaging import to_rgb_float_within
from .pose_risk import PoseRisk, frame_for, pose_anatomy_risk, risk_label
from .strokes import WORK_SIDE, StrokeStats, ink_map, measure_strokes
from .subject_tags import OpenClipTagger, parse_text_tags

# Broken lines: facing gap pairs per 100 px of stroke length, plus a little for every loose end.
BROKEN_END_WEIGHT = 0.15
BROKEN_SCALE = 0.6  # broken = 1 - exp(-raw / BROKEN_SCALE)
# Construction lines: faint share of stroke length, doubled so a third of faint strokes is ~0.67.
CONSTRUCTION_GAIN = 2.0
# Line quality = 1 - penalty; weights of the penalty terms.
LQ_WEIGHTS = {"broken": 0.45, "construction": 0.35, "width": 0.25, "specks": 0.15, "ragged": 0.5}
# Ragged edges: stroke outline length / (2 x stroke length); ~1.1 for smooth strokes, higher when
# a line is a chain of blobs and dashes.
RAGGED_FROM, RAGGED_SPAN = 1.15, 0.35
CLEAN_AT, STRUCTURED_AT = 0.70, 0.45
# Complexity: stroke length per subject-box perimeter and junctions per 100 px of stroke.
COMPLEX_AT = 0.42
SMALL_SUBJECT = 0.08  # subject box under 8 % of the canvas: say so in the notes


def _clip01(x: float) -> float:
    if not math.isfinite(x):
        return 0.0
    return float(min(1.0, max(0.0, x)))


def _per100(count: float, length: float) -> float:
    return 100.0 * count / max(length, 1.0)


def _scores(s: StrokeStats) -> dict[str, float]:
    length = float(s.skeleton_px)
    gap_density = _per100(s.gap_pairs, length)
    end_density = _per100(s.endpoints, length)
    broken = _clip01(1.0 - math.exp(-(gap_density + BROKEN_END_WEIGHT * end_density) / BROKEN_SCALE))
    construction = _clip01(CONSTRUCTION_GAIN * s.faint_skeleton_px / max(length, 1.0))
    spread = (s.width_p90 - s.width_p10) / max(s.width_p90 + s.width_p10, 1e-6)
    consistency = _clip01(1.0 - spread)
    specks = _clip01(_per100(s.specks, length) / 2.0)
    roughness = s.outline_px / max(2.0 * length, 1.0)
    ragged = _clip01((roughness - RAGGED_FROM) / RAGGED_SPAN)
    penalty = (
        LQ_WEIGHTS["broken"] * broken
        + LQ_WEIGHTS["construction"] * construction
        + LQ_WEIGHTS["width"] * (1.0 - consistency)
        + LQ_WEIGHTS["specks"] * specks
        + LQ_WEIGHTS["ragged"] * ragged
    )
    lq = _clip01(1.0 - penalty)

    perimeter = sum(2.0 * (w + h) for _, _, w, h in s.object_boxes) or 1.0
    length_ratio = length / perimeter  # ~0.8 for a bare outline, higher with inner detail
    junction_density = _per100(s.junctions, length)
    n_obj = len(s.object_boxes)
    complexity = _clip01(
        0.55 * _clip01((length_ratio - 0.8) / 2.2)
        + 0.3 * _clip01(junction_density / 1.5)
        + 0.15 * _clip01((n_obj - 1) / 3.0)
    )
    canvas = float(s.width * s.height)
    scale = _clip01(s.object_boxes[0][2] * s.object_boxes[0][3] / canvas) if s.object_boxes else 0.0
    return {
        "broken": broken, "construction": construction, "consistency": consistency, "specks": specks,
        "roughness": roughness, "ragged": ragged,
        "line_quality": lq, "complexity": complexity, "subject_scale": scale,
        "gap_density": gap_density, "end_density": end_density, "length_ratio": length_ratio,
        "junction_density": junction_density,
    }


def _line_label(score: float) -> str:
    return "clean" if score >= CLEAN_AT else "structured" if score >= STRUCTURED_AT else "messy"


def _structural_anatomy(sc: dict[str, float]) -> tuple[float, list[str]]:
    """Without a pose: how easily the figure can be misread, from the drawing's own structure."""
    score = _clip01(0.45 * (1.0 - sc["line_quality"]) + 0.3 * sc["complexity"] + 0.25 * sc["construction"])
    reasons = []
    if sc["broken"] > 0.5:
        reasons.append("broken contours make limbs and overlaps ambiguous")
    if sc["construction"] > 0.3:
        reasons.append("construction lines compete with the final contour")
    return score, reasons


def _notes(sc: dict[str, float], s: StrokeStats, risk_label_: str, risk_reasons: list[str]) -> dict[str, list[str]]:
    fix: list[str] = []
    remove: list[str] = []
    keep: list[str] = []
    if sc["broken"] >= 0.5:
        fix.append(f"close the gaps in broken contours ({s.gap_pairs} gaps, {s.endpoints} loose line ends)")
    if sc["ragged"] >= 0.5:
        fix.append("redraw ragged lines as single confident strokes (lines break into blobs and dashes)")
    if sc["consistency"] < 0.5:
        fix.append("even out the stroke width (widths vary a lot along the lines)")
    if risk_label_ != "low":
        fix.append("check anatomy: " + ("; ".join(risk_reasons) if risk_reasons else f"{risk_label_} risk"))
    if sc["subject_scale"] < SMALL_SUBJECT:
        fix.append(f"the main subject covers only {sc['subject_scale']:.0%} of the canvas: crop or enlarge it")
    if sc["construction"] >= 0.2:
        share = s.faint_skeleton_px / max(s.skeleton_px, 1)
        remove.append(f"faint construction lines ({share:.0%} of the line length)")
    if s.specks >= 3:
        remove.append(f"{s.specks} stray specks")
    if sc["line_quality"] >= CLEAN_AT:
        keep.append("the clean contours")
    if sc["consistency"] >= 0.7:
        keep.append("the consistent stroke weight")
    if risk_label_ == "low":
        keep.append("the pose and proportions")
    n = len(s.object_boxes)
    keep.append("the layout of the " + (f"{n} separate objects" if n > 1 else "main subject's silhouette"))
    return {"fix": fix, "remove": remove, "keep": keep}


def empty_analysis(name: str, tags: list[str], tags_source: str, reason: str) -> VisualAnalysis:
    return VisualAnalysis(
        image_name=name, empty=True, line_quality="empty", line_quality_score=0.0, construction_lines=0.0,
        broken_lines=0.0, stroke_width_consistency=0.0, complexity="simple", complexity_score=0.0,
        object_count=0, subject_scale=0.0, anatomy_risk="low", anatomy_risk_score=0.0, anatomy_source="structure",
        subject_tags=tags, tags_source=tags_source,
        notes={"fix": [f"{name}: {reason}; draw or load a sketch first"], "remove": [], "keep": []},
    )


def analyse(
    image: np.ndarray,
    name: str = "image",
    pose_frame: dict[str, Any] | None = None,
    text_tags: str | None = None,
    tagger: OpenClipTagger | None = None,
) -> VisualAnalysis:
    """Analyse one drawing. pose_frame is one POSE_KEYPOINT frame; tags come from the tagger when
    given, else from text_tags (comma-separated)."""
    # Shrink before converting to float: a 1024 px uint8 image costs a third of the full-size route.
    rgb, pre_scale = to_rgb_float_within(image, WORK_SIDE, name)
    tags, tags_source, tag_scores = parse_text_tags(text_tags), "text", {}
    if tagger is not None:
        result = tagger.tag(rgb)
        tags, tags_source, tag_scores = result.tags, "open_clip", result.scores
    elif not tags:
        tags_source = "none"

    ink = ink_map(rgb, name)
    s = measure_strokes(ink)
    if s.empty:
        out = empty_analysis(name, tags, tags_source, "no strokes found (blank or uniform image)")
        out.measurements = {"ink_share": s.ink_share, "skeleton_px": float(s.skeleton_px)}
        return out

    sc = _scores(s)
    pose: PoseRisk | None = pose_anatomy_risk(pose_frame) if pose_frame is not None else None
    if pose is not None:
        risk, reasons, source = pose.score, pose.reasons, "pose_keypoints"
    else:
        risk, reasons = _structural_anatomy(sc)
        source = "structure"
    label = risk_label(risk)

    measurements = {
        "ink_share": s.ink_share, "skeleton_px": float(s.skeleton_px), "faint_px": float(s.faint_skeleton_px),
        "endpoints": float(s.endpoints), "junctions": float(s.junctions), "gap_pairs": float(s.gap_pairs),
        "short_fragments": float(s.short_fragments),
        "median_stroke_width_px": s.median_width, "gap_radius_px": s.gap_radius,
        "group_radius_px": s.group_radius, "working_scale": ink.scale * pre_scale, "inverted": float(ink.inverted),
        "paper_level": ink.paper_level, "ink_threshold": ink.threshold,
        **{k: sc[k] for k in ("gap_density", "end_density", "length_ratio", "junction_density", "specks", "roughness")},
    }
    if pose is not None:
        measurements.update({f"pose_{k}": v for k, v in pose.measurements.items()})
    measurements.update({f"tag_score:{k}": v for k, v in tag_scores.items()})
    measurements = {k: (float(v) if math.isfinite(float(v)) else 0.0) for k, v in measurements.items()}

    return VisualAnalysis(
        image_name=name, empty=False,
        line_quality=_line_label(sc["line_quality"]), line_quality_score=sc["line_quality"],
        construction_lines=sc["construction"], broken_lines=sc["broken"],
        stroke_width_consistency=sc["consistency"],
        complexity="complex" if sc["complexity"] >= COMPLEX_AT else "simple", complexity_score=sc["complexity"],
        object_count=len(s.object_boxes), subject_scale=sc["subject_scale"],
        anatomy_risk=label, anatomy_risk_score=_clip01(risk), anatomy_source=source,
        subject_tags=tags, tags_source=tags_source,
        notes=_notes(sc, s, label, reasons), measurements=measurements,
    )


def analyse_batch(
    images: Sequence[np.ndarray],
    names: Sequence[str] | None = None,
    pose: Any = None,
    text_tags: str | None = None,
    tagger: OpenClipTagger | None = None,
) -> list[VisualAnalysis]:
    """Analyse each image; pose is a POSE_KEYPOINT list (one frame for all, or one per image)."""
    n = len(images)
    if n == 0:
        raise ValueError("image: the batch is empty")
    labels = list(names) if names is not None else [f"image {i + 1} of {n}" for i in range(n)]
    if len(labels) != n or not all(isinstance(label, str) for label in labels):
        raise ValueError(f"names: expected {n} image names (one per image), got {len(labels)}"
                         + ("" if len(labels) != n else " with a name that is not text"))
    return [
        analyse(img, labels[i], frame_for(pose, i, n), text_tags, tagger) for i, img in enumerate(images)
    ]
