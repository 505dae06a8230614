"""The records the agents hand to each other (and the nodes carry as custom types).

Plain dataclasses with JSON round-trips, so a plan can be logged, diffed and rebuilt exactly.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal, TypeVar

T = TypeVar("T")

# The named values a field takes (the Director and the panels read them by name).
LineQuality = Literal["messy", "structured", "clean", "empty"]
Complexity = Literal["simple", "complex"]
AnatomyRisk = Literal["low", "medium", "high"]


def _from_dict(cls: type[T], data: dict[str, Any]) -> T:
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    unknown = set(data) - names
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown field(s) {sorted(unknown)}")
    return cls(**data)


@dataclass
class VisualAnalysis:
    """What the Visual Analyst measured on one sketch (seed 004 sections 3A, 12).

    Scores are 0..1. line_quality_score: 1 = clean. construction_lines / broken_lines: share of
    the drawing that is faint construction strokes / fragmented strokes. subject_scale: share of
    the canvas covered by the main subject's bounding box. The rough-pencil signals (0..1, 1 =
    strongly present; web/docs/M4VisualAnalyst.md): overdrawn_strokes (second passes beside the
    strokes), graphite_texture (grain inside the strokes, light grey graphite), hatching (groups of
    short parallel strokes), line_wobble (hand wobble along the lines), heavy_strokes (marker-thick
    strokes for the drawing's size).
    """

    image_name: str
    empty: bool
    line_quality: LineQuality
    line_quality_score: float
    construction_lines: float
    broken_lines: float
    stroke_width_consistency: float
    complexity: Complexity
    complexity_score: float
    object_count: int
    subject_scale: float
    anatomy_risk: AnatomyRisk
    anatomy_risk_score: float
    anatomy_source: str  # "pose_keypoints" | "structure"
    subject_tags: list[str] = field(default_factory=list)
    tags_source: str = "none"  # "open_clip" | "text" | "none"
    notes: dict[str, list[str]] = field(default_factory=lambda: {"fix": [], "remove": [], "keep": []})
    measurements: dict[str, float] = field(default_factory=dict)
    overdrawn_strokes: float = 0.0
    graphite_texture: float = 0.0
    hatching: float = 0.0
    line_wobble: float = 0.0
    heavy_strokes: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VisualAnalysis:
        return _from_dict(cls, data)


@dataclass
class ReferenceReport:
    """What Reference Compare measured between a sketch and a style reference (sections 3B, 12, 16).

    present=False means no reference was given: similarity and reference_final_score are 0 and
    `reason` says so. conflict_penalty fuses text and image conflict; colored is the CR flag;
    accessory_conflict is AC; style_distance is D.
    """

    present: bool
    reason: str
    similarity: float
    similarity_source: str  # "classical" | "clip_vision" | "open_clip" | "none"
    text_conflict: float
    image_conflict: float
    conflict_penalty: float
    style_distance: float
    colored: bool
    saturation: float
    accessory_conflict: float
    reference_final_score: float
    measurements: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ReferenceReport:
        return _from_dict(cls, data)

    @classmethod
    def absent(cls, reason: str = "no reference image given") -> ReferenceReport:
        return cls(
            present=False, reason=reason, similarity=0.0, similarity_source="none",
            text_conflict=0.0, image_conflict=0.0, conflict_penalty=0.0, style_distance=0.0,
            colored=False, saturation=0.0, accessory_conflict=0.0, reference_final_score=0.0,
        )
