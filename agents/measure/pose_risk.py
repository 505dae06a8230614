"""Anatomy risk from controlnet_aux POSE_KEYPOINT data (OpenPose / DWPose, COCO-18 body points).

Format (see shared notes): a list with one dict per frame, `{"people": [{"pose_keypoints_2d":
[x, y, c] * 18, ...}], "canvas_width": W, "canvas_height": H}`. Missing points are 0, 0, 0.
OpenPose writes coordinates normalised to 0..1, DWPose writes pixels: both are accepted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from .analysis_types import AnatomyRisk
from .measure_data import measure_data

N_POINTS = 18
# COCO-18: 0 nose, 1 neck, 2 r-shoulder, 3 r-elbow, 4 r-wrist, 5 l-shoulder, 6 l-elbow, 7 l-wrist,
# 8 r-hip, 9 r-knee, 10 r-ankle, 11 l-hip, 12 l-knee, 13 l-ankle, 14 r-eye, 15 l-eye, 16 r-ear, 17 l-ear
BODY_POINTS = tuple(range(14))  # eyes and ears are often hidden without any anatomy problem
LIMB_PAIRS = (  # (right bone, left bone, name)
    ((2, 3), (5, 6), "upper arm"),
    ((3, 4), (6, 7), "forearm"),
    ((8, 9), (11, 12), "thigh"),
    ((9, 10), (12, 13), "shin"),
)
# The numbers of the risk score live in measure.toml [pose_risk].


class PoseKeypointError(ValueError):
    """The pose_keypoint input is not in the controlnet_aux POSE_KEYPOINT format."""


@dataclass
class PoseRisk:
    score: float
    label: str
    people: int
    reasons: list[str] = field(default_factory=list)
    measurements: dict[str, float] = field(default_factory=dict)


def risk_label(score: float) -> AnatomyRisk:
    k = measure_data()["pose_risk"]
    return "low" if score < k["medium_at"] else "medium" if score < k["high_at"] else "high"


def frame_for(pose: Any, index: int, batch: int) -> dict[str, Any] | None:
    """The POSE_KEYPOINT frame for batch item `index`: one frame serves every image."""
    if pose is None:
        return None
    frames = [pose] if isinstance(pose, dict) else pose
    if not isinstance(frames, (list, tuple)):
        raise PoseKeypointError(f"pose_keypoint: expected a list of frames, got {type(pose).__name__}")
    if not frames:
        return None
    if len(frames) not in (1, batch):
        raise PoseKeypointError(
            f"pose_keypoint: {len(frames)} frames for {batch} images (give one frame, or one per image)"
        )
    frame = frames[0] if len(frames) == 1 else frames[index]
    if not isinstance(frame, dict) or not isinstance(frame.get("people", []), list):
        raise PoseKeypointError("pose_keypoint: each frame must be a dict with a 'people' list")
    return frame


def _points(person: Any, canvas: tuple[float, float]) -> list[tuple[float, float, float]]:
    if not isinstance(person, dict):
        raise PoseKeypointError("pose_keypoint: each person must be a dict")
    flat = person.get("pose_keypoints_2d")
    if isinstance(flat, (list, tuple)) and flat and isinstance(flat[0], (list, tuple)):
        raise PoseKeypointError("pose_keypoint: pose_keypoints_2d must be a flat list [x1, y1, c1, x2, ...]")
    if not isinstance(flat, (list, tuple)) or len(flat) < N_POINTS * 3:
        got = len(flat) if isinstance(flat, (list, tuple)) else type(flat).__name__
        raise PoseKeypointError(f"pose_keypoint: pose_keypoints_2d must hold 18 x (x, y, c) values, got {got}")
    try:
        vals = [float(v) for v in flat[: N_POINTS * 3]]
    except (TypeError, ValueError) as exc:
        raise PoseKeypointError("pose_keypoint: pose_keypoints_2d must be numbers (a flat list)") from exc
    if not all(math.isfinite(v) for v in vals):
        raise PoseKeypointError("pose_keypoint: pose_keypoints_2d contains NaN or infinite values")
    pts = [(vals[3 * i], vals[3 * i + 1], vals[3 * i + 2]) for i in range(N_POINTS)]
    present = [(x, y) for x, y, c in pts if c >= measure_data()["pose_risk"]["min_confidence"]]
    normalised = all(0.0 <= v <= 1.0 for xy in present for v in xy)
    if not normalised:  # DWPose pixels -> the same 0..1 frame as OpenPose
        w, h = canvas
        pts = [(x / w, y / h, c) for x, y, c in pts]
    return pts


def _bone(pts: list[tuple[float, float, float]], a: int, b: int, aspect: float) -> float | None:
    (xa, ya, ca), (xb, yb, cb) = pts[a], pts[b]
    min_conf = measure_data()["pose_risk"]["min_confidence"]
    if ca < min_conf or cb < min_conf:
        return None
    return math.hypot((xa - xb) * aspect, ya - yb)


def _person_risk(pts: list[tuple[float, float, float]], aspect: float) -> tuple[float, list[str], dict[str, float]]:
    k = measure_data()["pose_risk"]
    min_conf, tolerance = k["min_confidence"], k["asymmetry_tolerance"]
    conf = [pts[i][2] for i in BODY_POINTS]
    missing = [i for i in BODY_POINTS if pts[i][2] < min_conf]
    missing_share = len(missing) / len(BODY_POINTS)
    seen = [c for c in conf if c >= min_conf]
    mean_conf = min(1.0, sum(seen) / len(seen)) if seen else 0.0
    reasons: list[str] = []
    if missing_share > 0:
        reasons.append(f"{len(missing)} of {len(BODY_POINTS)} body keypoints not found")
    asym = 0.0
    for right, left, name in LIMB_PAIRS:
        r, lft = _bone(pts, *right, aspect), _bone(pts, *left, aspect)
        if r and lft:
            diff = abs(r - lft) / max(r, lft)
            if diff > tolerance:
                reasons.append(f"left and right {name} lengths differ by {diff:.0%}")
            asym = max(asym, diff)
    shoulders = _bone(pts, 2, 5, aspect)
    torso = _bone(pts, 1, 8, aspect) or _bone(pts, 1, 11, aspect)
    proportion = 0.0
    if shoulders and torso:
        ratio = torso / shoulders  # an upright adult torso is roughly 1-2.5 shoulder widths long
        proportion = min(1.0, max(0.0, k["torso_ratio_min"] - ratio, ratio - k["torso_ratio_max"]))
        if proportion > 0:
            reasons.append(f"torso / shoulder ratio {ratio:.2f} is outside the usual range")
    asym_term = min(1.0, max(0.0, asym - k["asymmetry_from"]) / (2 * tolerance))
    score = min(1.0, k["w_missing"] * missing_share + k["w_asymmetry"] * asym_term
                + k["w_low_confidence"] * (1.0 - mean_conf) + k["w_proportion"] * proportion)
    meas = {"missing_share": missing_share, "mean_confidence": mean_conf, "limb_asymmetry": asym}
    return score, reasons, meas


def pose_anatomy_risk(frame: dict[str, Any]) -> PoseRisk | None:
    """Risk that the figure's anatomy is misread: missing body points, asymmetric limbs, odd
    proportions, and several overlapping people. None when the frame holds no person."""
    people = frame.get("people") or []
    if not people:
        return None
    try:
        w = float(frame["canvas_width"]) if frame.get("canvas_width") is not None else 1.0
        h = float(frame["canvas_height"]) if frame.get("canvas_height") is not None else 1.0
    except (TypeError, ValueError) as exc:
        raise PoseKeypointError("pose_keypoint: canvas_width / canvas_height must be numbers") from exc
    if not (w > 0 and h > 0 and math.isfinite(w) and math.isfinite(h)):
        raise PoseKeypointError(f"pose_keypoint: canvas size must be positive, got {w} x {h}")
    aspect = w / h
    results = [_person_risk(_points(p, (w, h)), aspect) for p in people]
    worst = max(results, key=lambda r: r[0])
    score, reasons, meas = worst
    if len(people) > 1:  # interacting figures: limbs get swapped between people
        score = min(1.0, score + measure_data()["pose_risk"]["per_extra_person"] * (len(people) - 1))
        reasons = [*reasons, f"{len(people)} people in the pose"]
    meas = {**meas, "people": float(len(people))}
    return PoseRisk(score=score, label=risk_label(score), people=len(people), reasons=reasons, measurements=meas)
