"""Line Quality Analyzer: synthetic line art with one planted defect each, real sketches, the judge."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from agents.measure.imaging import ImageInputError, load_image
from agents.measure.line_quality import METRICS, LineQualityScores, judge, score_line_art

# Limits used by these tests (the shipped policy has its own; the node test uses those).
LIMITS = {"max_broken": 0.35, "max_dotted": 0.25, "max_fringe": 0.2, "max_jitter": 0.3, "max_stray": 0.2,
          "retry_cfg2_step": 0.4, "retry_ip2_step": 0.1, "retry_denoise2_step": 0.08}


def _strokes() -> list[np.ndarray]:
    t = np.linspace(0, 2 * np.pi, 400)
    x = np.linspace(60, 450, 300)
    return [
        np.stack([256 + 150 * np.cos(t), 256 + 150 * np.sin(t)], 1),
        np.stack([x, 440 + 20 * np.sin(x / 40)], 1),
        np.array([[60, 60], [200, 60]], float),
        np.array([[450, 60], [450, 200]], float),
        np.array([[200, 200], [310, 200], [310, 310], [200, 310], [200, 200]], float),
    ]


def _dense(p: np.ndarray) -> np.ndarray:
    out = [p[0]]
    for a, b in zip(p[:-1], p[1:], strict=True):
        n = max(1, int(np.linalg.norm(b - a)))
        out.extend(a + (b - a) * k / n for k in range(1, n + 1))
    return np.array(out)


def _draw(img: np.ndarray, strokes: list[np.ndarray], colour=(0, 0, 0)) -> np.ndarray:
    for s in strokes:
        cv2.polylines(img, [np.round(s).astype(np.int32)], False, colour, 3, cv2.LINE_AA)
    return img


def _paper() -> np.ndarray:
    return np.full((512, 512, 3), 255, np.uint8)


def clean() -> np.ndarray:
    return _draw(_paper(), _strokes())


def with_gaps() -> np.ndarray:
    img = clean()
    for s in _strokes():
        for p in _dense(s)[22::45]:
            cv2.circle(img, (int(p[0]), int(p[1])), 5, (255, 255, 255), -1)
    return img


def dotted() -> np.ndarray:
    st = _strokes()
    img = _draw(_paper(), st[2:])
    for s in st[:2]:
        for p in _dense(s)[::9]:
            cv2.circle(img, (int(p[0]), int(p[1])), 2, (0, 0, 0), -1, cv2.LINE_AA)
    return img


def fringed() -> np.ndarray:
    st = _strokes()
    img = _draw(_paper(), [s + 2.5 for s in st], (230, 40, 40))
    img = _draw(img, [s - 2.5 for s in st], (40, 80, 230))
    return _draw(img, st)


def jittered(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = []
    for s in _strokes():
        d = _dense(s)
        tangent = np.gradient(d, axis=0)
        normal = np.stack([-tangent[:, 1], tangent[:, 0]], 1)
        normal /= np.linalg.norm(normal, axis=1, keepdims=True) + 1e-9
        wobble = np.convolve(rng.normal(0, 2.0, len(d)), np.ones(3) / 3, "same") * 1.7
        out.append(d + normal * wobble[:, None])
    return _draw(_paper(), out)


def specked(n: int = 30, seed: int = 0) -> np.ndarray:
    img = clean()
    rng = np.random.default_rng(seed)
    free = cv2.distanceTransform((img[:, :, 0] > 128).astype(np.uint8), cv2.DIST_L2, 3)
    placed = 0
    while placed < n:
        x, y = (int(v) for v in rng.integers(10, 502, 2))
        if free[y, x] > 30:
            cv2.circle(img, (x, y), int(rng.integers(1, 3)), (0, 0, 0), -1)
            free[max(0, y - 30):y + 30, max(0, x - 30):x + 30] = 0
            placed += 1
    return img


def test_clean_line_art_passes() -> None:
    s = score_line_art(clean())
    assert not s.empty
    for m in METRICS:
        assert getattr(s, m) < 0.1, m
    v = judge(s, LIMITS)
    assert v.passed and v.failures == [] and v.retry == {}


@pytest.mark.parametrize(("make", "metric"), [
    (with_gaps, "broken"),
    (dotted, "dotted"),
    (fringed, "fringe"),
    (jittered, "jitter"),
    (specked, "stray"),
])
def test_each_planted_defect_raises_its_metric_and_fails_its_check(make, metric) -> None:
    base = score_line_art(clean())
    s = score_line_art(make())
    assert getattr(s, metric) > getattr(base, metric) + 0.4
    v = judge(s, LIMITS)
    assert not v.passed
    assert v.failures == [metric]  # the defect is named, and no other check fires
    assert v.retry == {"cfg2_step": 0.4, "ip2_step": 0.1, "denoise2_step": 0.08}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_jitter_and_specks_hold_for_other_seeds(seed) -> None:
    assert judge(score_line_art(jittered(seed)), LIMITS).failures == ["jitter"]
    assert judge(score_line_art(specked(seed=seed)), LIMITS).failures == ["stray"]


def test_scores_grow_with_defect_amount() -> None:
    assert score_line_art(specked(5)).stray < score_line_art(specked(30)).stray


def test_real_fragmented_sketch_is_more_broken_than_clean_one(fixture_data) -> None:
    house = score_line_art(load_image(fixture_data / "sketches/house_line.png"))
    turtle = score_line_art(load_image(fixture_data / "sketches/user_1.png"))
    assert house.broken > turtle.broken + 0.3
    assert house.measurements["gaps_per_1000px"] > turtle.measurements["gaps_per_1000px"]


def test_scores_do_not_depend_much_on_resolution() -> None:
    small = score_line_art(with_gaps())
    big = score_line_art(cv2.resize(with_gaps(), (1024, 1024), interpolation=cv2.INTER_CUBIC))
    assert abs(small.broken - big.broken) < 0.15


def test_blank_image_is_empty_and_fails() -> None:
    s = score_line_art(np.full((128, 128, 3), 255, np.uint8))
    assert s.empty
    assert judge(s, LIMITS).failures == ["empty"]


def test_judge_names_missing_or_bad_thresholds() -> None:
    s = score_line_art(clean())
    partial = {k: v for k, v in LIMITS.items() if k != "max_jitter"}
    with pytest.raises(ValueError, match="max_jitter"):
        judge(s, partial)
    with pytest.raises(ValueError, match="max_stray"):
        judge(s, {**LIMITS, "max_stray": float("nan")})


def test_judge_fails_each_metric_at_its_own_limit() -> None:
    for m in METRICS:
        scores = LineQualityScores(**{k: 0.0 for k in METRICS})
        setattr(scores, m, LIMITS[f"max_{m}"] + 0.01)
        assert judge(scores, LIMITS).failures == [m]
        setattr(scores, m, LIMITS[f"max_{m}"])
        assert judge(scores, LIMITS).passed


@pytest.mark.parametrize("bad", [
    np.zeros((512, 512, 5), np.uint8),
    np.zeros((10, 512, 3), np.uint8),
    np.full((64, 64, 3), np.nan, np.float32),
    np.zeros((1, 64, 64, 3), np.float32),
    "not an image",
])
def test_bad_images_are_named(bad) -> None:
    with pytest.raises(ImageInputError, match="^image:"):
        score_line_art(bad)
