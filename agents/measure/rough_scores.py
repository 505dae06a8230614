"""The rough-pencil signals of the Visual Analyst as 0..1 scores (1 = strongly present).

Raw measures come from stroke_signals.py (via StrokeStats); the numbers turning them into scores
are measure.toml [rough_scores], their weights in the line-quality penalty [line_quality_weights].
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .strokes import StrokeStats
from .unit_interval import clip01

ROUGH_SIGNALS = ("overdrawn_strokes", "graphite_texture", "hatching", "line_wobble", "heavy_strokes")


def rough_notes(sc: Mapping[str, float], s: StrokeStats, at: float) -> tuple[list[str], list[str]]:
    """(fix, remove) notes for the rough signals at or above `at`."""
    fix: list[str] = []
    remove: list[str] = []
    length = max(float(s.skeleton_px), 1.0)
    if sc["overdrawn_strokes"] >= at:
        fix.append(f"redraw doubled strokes as one line each ({s.overdrawn_px / length:.0%} of the line length "
                   "has a second pass beside it)")
    if sc["graphite_texture"] >= at:
        fix.append("ink or darken the light, grainy pencil lines")
    if sc["line_wobble"] >= at:
        fix.append("steady the wobbly lines (redraw them in single smooth strokes)")
    if sc["heavy_strokes"] >= at:
        fix.append("the strokes are marker-thick for the drawing's size: draw finer lines or a larger drawing")
    if sc["hatching"] >= at:
        remove.append(f"hatching ({s.hatch_segments} short parallel shading strokes)")
    return fix, remove


def _ramp(x: float, start: float, span: float) -> float:
    return clip01((x - start) / span)


def rough_scores(s: StrokeStats, k: Mapping[str, Any]) -> dict[str, float]:
    """overdrawn_strokes, graphite_texture, hatching, line_wobble, heavy_strokes (0..1) of one drawing."""
    length = max(float(s.skeleton_px), 1.0)
    # Grain inside solid ink is the width change of filled strokes, not paper tooth: it fades out
    # as the solid share rises.
    solid = _ramp(s.solid_share, k["solid_from"], k["solid_span"])
    grain = _ramp(s.grain, k["grain_from"], k["grain_span"]) * (1.0 - solid)
    light = _ramp(k["darkness_from"] - s.darkness, 0.0, k["darkness_span"])
    side = float(max(s.width, s.height))
    return {
        "overdrawn_strokes": _ramp(s.overdrawn_px / length, k["overdraw_from"], k["overdraw_span"]),
        "graphite_texture": clip01(k["texture_w_grain"] * grain + k["texture_w_light"] * light),
        "hatching": _ramp(s.hatched_px / length, 0.0, k["hatching_full"]),
        "line_wobble": _ramp(s.wobble_px, k["wobble_from"], k["wobble_span"]),
        "heavy_strokes": _ramp(s.median_width / side, k["heavy_from"], k["heavy_span"]),
    }
