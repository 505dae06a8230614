"""Property tests: whatever pixels arrive, the analysis is finite, bounded and well-formed."""

from __future__ import annotations

import math

import cv2
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents.measure.visual_analyst import analyse


@st.composite
def drawings(draw):
    h = draw(st.integers(16, 200))
    w = draw(st.integers(16, 200))
    paper = draw(st.floats(0.0, 1.0))
    img = np.full((h, w, 3), paper, np.float32)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    for _ in range(draw(st.integers(0, 12))):
        colour = tuple(float(c) for c in rng.random(3))
        p1 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        p2 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        cv2.line(img, p1, p2, colour, int(rng.integers(1, 6)), cv2.LINE_AA)
    noise = draw(st.floats(0.0, 0.3))
    img = np.clip(img + noise * rng.standard_normal(img.shape).astype(np.float32), 0.0, 1.0)
    if draw(st.booleans()):
        alpha = rng.random((h, w, 1)).astype(np.float32)
        img = np.concatenate([img, alpha], axis=2)
    return img


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(drawings())
def test_any_image_gives_finite_bounded_fields(img):
    a = analyse(img, "generated")
    for key in ("line_quality_score", "construction_lines", "broken_lines", "stroke_width_consistency",
                "complexity_score", "subject_scale", "anatomy_risk_score"):
        v = getattr(a, key)
        assert math.isfinite(v) and 0.0 <= v <= 1.0, (key, v)
    assert all(math.isfinite(v) for v in a.measurements.values())
    assert a.line_quality in ("messy", "structured", "clean", "empty")
    assert (a.line_quality == "empty") == a.empty
    assert a.object_count >= 0 if a.empty else a.object_count >= 1
    assert set(a.notes) == {"fix", "remove", "keep"}
