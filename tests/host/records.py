"""Agent records built by hand for tests: plausible defaults, any field overridable."""

from __future__ import annotations

from typing import Any

from agents.measure.analysis_types import ReferenceReport, VisualAnalysis


def make_analysis(**overrides) -> VisualAnalysis:
    base = dict(image_name="t", empty=False, line_quality="structured", line_quality_score=0.6,
                construction_lines=0.1, broken_lines=0.1, stroke_width_consistency=0.7, complexity="simple",
                complexity_score=0.3, object_count=1, subject_scale=0.45, anatomy_risk="low",
                anatomy_risk_score=0.2, anatomy_source="structure", subject_tags=["1girl", "smile"])
    base.update(overrides)
    return VisualAnalysis(**base)


def make_reference(**overrides) -> ReferenceReport:
    base = dict(present=True, reason="", similarity=0.8, similarity_source="classical", text_conflict=0.0,
                image_conflict=0.1, conflict_penalty=0.1, style_distance=0.3, colored=False, saturation=0.05,
                accessory_conflict=0.0, reference_final_score=0.7)
    base.update(overrides)
    return ReferenceReport(**base)


def random_context(rng: Any) -> tuple[VisualAnalysis, ReferenceReport]:
    """A random but plausible (analysis, reference) pair, as a logged run's context (numpy Generator rng)."""
    a = make_analysis(line_quality_score=float(rng.random()), construction_lines=float(rng.random() * 0.5),
                      broken_lines=float(rng.random() * 0.5), complexity_score=float(rng.random()),
                      subject_scale=float(rng.random()), anatomy_risk_score=float(rng.random()),
                      object_count=int(rng.integers(1, 3)))
    r = make_reference(similarity=float(rng.random()), conflict_penalty=float(rng.random()),
                       style_distance=float(rng.random()), colored=bool(rng.random() < 0.2))
    return a, r
