"""Visual Analyst (seed 004 sections 3A and 12): what state a sketch is in, as 0..1 signals.

analyse() takes one drawing as a numpy array (any of the shapes agents.measure.imaging accepts) and
returns a VisualAnalysis. Scores and their thresholds are defined in web/docs/M4VisualAnalyst.md;
their numbers live in measure.toml ([scores], [line_quality_weights], [labels], [complexity],
[structural_anatomy], [notes]), validated by measure_data.py.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .analysis_types import LineQuality, VisualAnalysis
from .imaging import to_rgb_float_within
from .measure_data import measure_data
from .pose_risk import PoseRisk, frame_for, pose_anatomy_risk, risk_label
from .rough_scores import ROUGH_SIGNALS, rough_notes, rough_scores
from .strokes import WORK_SIDE, StrokeStats, ink_map, measure_strokes
from .subject_tags import OpenClipTagger, parse_text_tags
from .unit_interval import clip01 as _clip01


def _per100(count: float, length: float) -> float:
    return 100.0 * count / max(length, 1.0)


def _scores(s: StrokeStats) -> dict[str, float]:
    d = measure_data()
    k, wt, cx = d["scores"], d["line_quality_weights"], d["complexity"]
    length = float(s.skeleton_px)
    gap_density = _per100(s.gap_pairs, length)
    end_density = _per100(s.endpoints - s.tapered_ends, length)  # tapers are drawn ends, not loose ones
    broken = _clip01(1.0 - math.exp(-(gap_density + k["broken_end_weight"] * end_density) / k["broken_scale"]))
    construction = _clip01(k["construction_gain"] * s.faint_skeleton_px / max(length, 1.0))
    spread = (s.width_p90 - s.width_p10) / max(s.width_p90 + s.width_p10, 1e-6)
    consistency = _clip01(1.0 - spread)
    specks = _clip01(_per100(s.specks, length) / k["specks_per100_full"])
    roughness = s.outline_px / max(2.0 * length, 1.0)  # two sides of a smooth stroke of that length
    ragged = _clip01((roughness - k["ragged_from"]) / k["ragged_span"])
    penalty = (
        wt["broken"] * broken
        + wt["construction"] * construction
        + wt["width"] * (1.0 - consistency)
        + wt["specks"] * specks
        + wt["ragged"] * ragged
    )
    rough = rough_scores(s, d["rough_scores"])
    penalty += sum(wt[name] * rough[name] for name in ROUGH_SIGNALS)
    lq = _clip01(1.0 - penalty)

    perimeter = sum(2.0 * (w + h) for _, _, w, h in s.object_boxes) or 1.0
    length_ratio = length / perimeter  # ~0.8 for a bare outline, higher with inner detail
    junction_density = _per100(s.junctions, length)
    n_obj = len(s.object_boxes)
    complexity = _clip01(
        cx["w_length"] * _clip01((length_ratio - cx["length_ratio_from"]) / cx["length_ratio_span"])
        + cx["w_junctions"] * _clip01(junction_density / cx["junctions_per100_full"])
        + cx["w_objects"] * _clip01((n_obj - 1) / cx["objects_span"])
    )
    canvas = float(s.width * s.height)
    scale = _clip01(s.object_boxes[0][2] * s.object_boxes[0][3] / canvas) if s.object_boxes else 0.0
    return {
        "broken": broken, "construction": construction, "consistency": consistency, "specks": specks,
        "roughness": roughness, "ragged": ragged,
        "line_quality": lq, "complexity": complexity, "subject_scale": scale,
        "gap_density": gap_density, "end_density": end_density, "length_ratio": length_ratio,
        "junction_density": junction_density, **rough,
    }


def _line_label(score: float) -> LineQuality:
    lab = measure_data()["labels"]
    return "clean" if score >= lab["clean_at"] else "structured" if score >= lab["structured_at"] else "messy"


def _structural_anatomy(sc: dict[str, float]) -> tuple[float, list[str]]:
    """Without a pose: how easily the figure can be misread, from the drawing's own structure."""
    a = measure_data()["structural_anatomy"]
    score = _clip01(a["w_line_quality"] * (1.0 - sc["line_quality"]) + a["w_complexity"] * sc["complexity"]
                    + a["w_construction"] * sc["construction"])
    reasons = []
    if sc["broken"] > a["broken_reason_above"]:
        reasons.append("broken contours make limbs and overlaps ambiguous")
    if sc["construction"] > a["construction_reason_above"]:
        reasons.append("construction lines compete with the final contour")
    return score, reasons


def _notes(sc: dict[str, float], s: StrokeStats, risk_label_: str, risk_reasons: list[str]) -> dict[str, list[str]]:
    t = measure_data()["notes"]
    fix: list[str] = []
    remove: list[str] = []
    keep: list[str] = []
    if sc["broken"] >= t["broken_fix_at"]:
        fix.append(f"close the gaps in broken contours ({s.gap_pairs} gaps, {s.endpoints - s.tapered_ends} "
                   "loose line ends)")
    if sc["ragged"] >= t["ragged_fix_at"]:
        fix.append("redraw ragged lines as single confident strokes (lines break into blobs and dashes)")
    if sc["consistency"] < t["consistency_fix_below"]:
        fix.append("even out the stroke width (widths vary a lot along the lines)")
    if risk_label_ != "low":
        fix.append("check anatomy: " + ("; ".join(risk_reasons) if risk_reasons else f"{risk_label_} risk"))
    if sc["subject_scale"] < t["small_subject_below"]:
        fix.append(f"the main subject covers only {sc['subject_scale']:.0%} of the canvas: crop or enlarge it")
    if sc["construction"] >= t["construction_remove_at"]:
        share = s.faint_skeleton_px / max(s.skeleton_px, 1)
        remove.append(f"faint construction lines ({share:.0%} of the line length)")
    if s.specks >= t["specks_remove_at"]:
        remove.append(f"{s.specks} stray specks")
    rough_fix, rough_remove = rough_notes(sc, s, t["rough_fix_at"])
    fix += rough_fix
    remove += rough_remove
    if sc["line_quality"] >= measure_data()["labels"]["clean_at"]:
        keep.append("the clean contours")
    if sc["consistency"] >= t["consistency_keep_at"]:
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
        "tapered_ends": float(s.tapered_ends), "overdrawn_share": s.overdrawn_px / max(s.skeleton_px, 1),
        "stroke_grain": s.grain, "stroke_darkness": s.darkness, "solid_share": s.solid_share,
        "hatched_share": s.hatched_px / max(s.skeleton_px, 1),
        "hatch_strokes": float(s.hatch_segments), "wobble_px": s.wobble_px,
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
        complexity="complex" if sc["complexity"] >= measure_data()["labels"]["complex_at"] else "simple",
        complexity_score=sc["complexity"],
        object_count=len(s.object_boxes), subject_scale=sc["subject_scale"],
        anatomy_risk=label, anatomy_risk_score=_clip01(risk), anatomy_source=source,
        subject_tags=tags, tags_source=tags_source,
        notes=_notes(sc, s, label, reasons), measurements=measurements,
        **{k: sc[k] for k in ROUGH_SIGNALS},
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
