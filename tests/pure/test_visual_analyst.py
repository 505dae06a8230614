"""Visual Analyst on real drawings: label-grounded orderings, metamorphic moves, invariances."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from agents.measure.imaging import ImageInputError, load_image, to_rgb_float
from agents.measure.rough_scores import ROUGH_SIGNALS
from agents.measure.visual_analyst import analyse, analyse_batch

SCORES = ("line_quality_score", "construction_lines", "broken_lines", "stroke_width_consistency",
          "complexity_score", "subject_scale", "anatomy_risk_score", *ROUGH_SIGNALS)


@pytest.fixture(scope="module")
def sketches(fixture_data):
    folder = fixture_data / "sketches"
    return {p.stem: load_image(p) for p in sorted(folder.glob("*.png"))}


@pytest.fixture(scope="module")
def results(sketches):
    return {name: analyse(img, name) for name, img in sketches.items()}


def rgb(img: np.ndarray) -> np.ndarray:
    return to_rgb_float(img)


def assert_finite(a) -> None:
    for key in SCORES:
        v = getattr(a, key)
        assert math.isfinite(v) and 0.0 <= v <= 1.0, (key, v)
    for key, v in a.measurements.items():
        assert math.isfinite(v), (key, v)


# ---- real drawings, orderings grounded in ATTRIBUTION.md labels ---------------------------------

def test_every_real_sketch_gives_finite_bounded_scores(results):
    assert set(results) >= {"house_line", "user_1", "user_3", "human_line", "bag_scribble"}
    for a in results.values():
        assert not a.empty
        assert a.line_quality in ("messy", "structured", "clean")
        assert a.complexity in ("simple", "complex")
        assert a.anatomy_risk in ("low", "medium", "high")
        assert a.anatomy_source == "structure"
        assert_finite(a)


def test_house_line_is_more_broken_and_lower_quality_than_clean_drawings(results):
    house = results["house_line"]
    for clean in ("user_1", "user_3"):
        assert house.broken_lines > results[clean].broken_lines
        assert house.line_quality_score < results[clean].line_quality_score
    assert house.line_quality == "messy"
    assert results["user_1"].line_quality == "clean"
    assert results["user_3"].line_quality == "clean"


def test_clean_single_objects_count_as_one(results):
    assert results["user_1"].object_count == 1
    assert results["user_3"].object_count == 1
    assert results["human_line"].object_count == 1


def test_rgba_person_drawing_equals_its_composite_on_white(sketches):
    rgba = sketches["human_line"]
    assert rgba.shape[2] == 4
    alpha = rgba[:, :, 3:4].astype(np.float32) / 255.0
    composite = rgba[:, :, :3].astype(np.float32) / 255.0 * alpha + (1.0 - alpha)
    a, b = analyse(rgba, "rgba"), analyse(composite, "rgb")
    for key in SCORES:
        assert getattr(a, key) == pytest.approx(getattr(b, key), abs=1e-6)
    assert a.object_count == b.object_count


def test_rgba_with_real_transparency_composites_on_white(sketches):
    base = rgb(sketches["user_1"])
    ink = 1.0 - base.mean(axis=2, keepdims=True)
    # Strokes carried only by alpha over black colour: visible only if composited on white.
    rgba = np.concatenate([np.zeros_like(base), ink], axis=2)
    a, b = analyse(rgba, "alpha-only"), analyse(base, "base")
    assert not a.empty
    assert a.object_count == b.object_count
    assert a.line_quality_score == pytest.approx(b.line_quality_score, abs=0.05)


# ---- metamorphic: each edit must move its own signal the right way -----------------------------

def test_faint_construction_strokes_raise_construction_and_lower_quality(sketches):
    base = rgb(sketches["user_1"])
    edited = base.copy()
    rng = np.random.default_rng(3)
    for _ in range(6):  # light guide lines and a blocking-in ellipse, drawn in pale grey
        p1 = tuple(int(v) for v in rng.integers(20, 490, 2))
        p2 = tuple(int(v) for v in rng.integers(20, 490, 2))
        cv2.line(edited, p1, p2, (0.75, 0.75, 0.75), 2, cv2.LINE_AA)
    cv2.ellipse(edited, (250, 290), (200, 130), 0, 0, 360, (0.75, 0.75, 0.75), 2, cv2.LINE_AA)
    a, b = analyse(base, "base"), analyse(edited, "construction")
    assert b.construction_lines > a.construction_lines + 0.2
    assert b.line_quality_score < a.line_quality_score - 0.1
    assert any("construction" in n for n in b.notes["remove"])


def test_cutting_contours_into_gaps_raises_broken_lines(sketches):
    for name in ("user_1", "user_3"):
        base = rgb(sketches[name])
        yy, xx = np.mgrid[: base.shape[0], : base.shape[1]]
        cut = base.copy()
        cut[((xx + yy) % 28) < 5] = 1.0  # diagonal paper stripes cut every stroke
        a, b = analyse(base, name), analyse(cut, f"{name} cut")
        assert b.broken_lines > a.broken_lines + 0.2
        assert b.line_quality_score < a.line_quality_score
        assert b.measurements["gap_pairs"] > a.measurements["gap_pairs"]


def test_second_figure_beside_the_first_raises_object_count(sketches):
    base = rgb(sketches["user_1"])
    h, w = base.shape[:2]
    two = np.ones((h, 2 * w + 64, 3), np.float32)
    two[:, :w] = base
    two[:, w + 64:] = base
    a, b = analyse(base, "one"), analyse(two, "two")
    assert a.object_count == 1
    assert b.object_count == 2

    small = cv2.resize(rgb(sketches["user_3"]), (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    pair = np.ones_like(base)
    pair[h // 4:h // 4 + h // 2, : w // 2] = small
    pair[h // 4:h // 4 + h // 2, w // 2:] = small
    assert analyse(pair, "pair").object_count == 2


def test_scaling_the_drawing_down_on_the_canvas_lowers_subject_scale(sketches):
    for name in ("user_1", "user_3", "human_line"):
        base = rgb(sketches[name])
        h, w = base.shape[:2]
        small = cv2.resize(base, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
        canvas = np.ones_like(base)
        canvas[h // 4:h // 4 + h // 2, w // 4:w // 4 + w // 2] = small
        a, b = analyse(base, name), analyse(canvas, f"{name} small")
        # Half the size in both directions: a quarter of the area, within drawing-edge slack.
        assert b.subject_scale == pytest.approx(a.subject_scale / 4, rel=0.2)
        assert b.object_count == a.object_count


# ---- invariances -------------------------------------------------------------------------------

def close(a, b, tol: float = 0.1) -> None:
    for key in SCORES:
        assert abs(getattr(a, key) - getattr(b, key)) <= tol, (key, getattr(a, key), getattr(b, key))
    assert a.object_count == b.object_count
    assert a.line_quality == b.line_quality


@pytest.mark.parametrize("name", ["user_1", "house_line", "bag_scribble"])
def test_light_strokes_on_dark_paper_match_the_original(sketches, name):
    base = rgb(sketches[name])
    inv = analyse(1.0 - base, "inverted")
    close(analyse(base, name), inv, tol=0.02)
    assert inv.measurements["inverted"] == 1.0


@pytest.mark.parametrize("name", ["user_1", "house_line"])
def test_scanned_paper_texture_and_shading_is_flat_fielded(sketches, name):
    base = rgb(sketches[name])
    h, w = base.shape[:2]
    rng = np.random.default_rng(7)
    grain = cv2.GaussianBlur(rng.standard_normal((h, w)).astype(np.float32), (0, 0), 1.0)
    shading = np.linspace(1.0, 0.78, w, dtype=np.float32)[None, :]
    shading = shading * np.linspace(0.95, 1.0, h, dtype=np.float32)[:, None]
    paper = np.clip((0.93 + 0.12 * grain) * shading, 0.0, 1.0)[:, :, None]
    tinted = paper * np.array([1.0, 0.97, 0.9], np.float32)  # warm paper tone
    close(analyse(base, name), analyse(base * tinted, "scanned"), tol=0.12)


@pytest.mark.parametrize("name", ["user_1", "user_3", "house_line"])
def test_four_times_upscaled_drawing_gives_close_results(sketches, name):
    base = rgb(sketches[name])
    h, w = base.shape[:2]
    big = np.clip(cv2.resize(base, (4 * w, 4 * h), interpolation=cv2.INTER_CUBIC), 0.0, 1.0)
    a, b = analyse(base, name), analyse(big, "4x")
    close(a, b, tol=0.08)
    assert b.measurements["working_scale"] == pytest.approx(0.25 * a.measurements["working_scale"], rel=1e-3)


def test_coloured_strokes_count_as_ink(sketches):
    base = rgb(sketches["user_1"])
    for colour in ((1.0, 0.85, 0.0), (0.9, 0.1, 0.1), (0.1, 0.4, 1.0)):
        tinted = 1.0 - (1.0 - base) * (1.0 - np.array(colour, np.float32))
        close(analyse(base, "black"), analyse(tinted, f"strokes {colour}"), tol=0.05)


def test_grayscale_and_uint8_inputs_match_float_rgb(sketches):
    base8 = sketches["user_3"]
    gray8 = base8[:, :, 0]
    a = analyse(base8, "rgb8")
    close(a, analyse(gray8, "gray"), tol=1e-6)
    close(a, analyse(gray8[:, :, None], "gray1"), tol=1e-6)


# ---- empty, tiny, broken inputs ----------------------------------------------------------------

@pytest.mark.parametrize("value", [0.0, 0.5, 1.0])
def test_blank_images_give_an_explicit_empty_result_naming_the_image(value):
    blank = np.full((200, 300, 3), value, np.float32)
    a = analyse(blank, "blank sheet")
    assert a.empty and a.line_quality == "empty" and a.object_count == 0
    assert "blank sheet" in a.notes["fix"][0]
    assert_finite(a)


def test_plain_paper_texture_alone_is_empty():
    rng = np.random.default_rng(0)
    paper = np.clip(0.9 + 0.02 * rng.standard_normal((256, 256)), 0, 1).astype(np.float32)
    assert analyse(paper, "scan of empty paper").empty


def test_too_small_and_malformed_images_raise_named_errors():
    with pytest.raises(ImageInputError, match="thumb.*too small"):
        analyse(np.ones((8, 8, 3), np.float32), "thumb")
    with pytest.raises(ImageInputError, match="strip.*too elongated"):
        analyse(np.ones((20, 4000, 3), np.float32), "strip")
    with pytest.raises(ImageInputError, match="nan-image.*NaN"):
        bad = np.ones((64, 64, 3), np.float32)
        bad[3, 3] = np.nan
        analyse(bad, "nan-image")
    with pytest.raises(ValueError, match="batch is empty"):
        analyse_batch([])


def test_batch_keeps_order_names_and_per_image_results(sketches):
    imgs = [sketches["house_line"], sketches["user_1"], np.ones((64, 64, 3), np.float32)]
    out = analyse_batch(imgs, text_tags="turtle, sketch, turtle")
    assert [r.image_name for r in out] == ["image 1 of 3", "image 2 of 3", "image 3 of 3"]
    assert out[0].broken_lines > out[1].broken_lines
    assert out[2].empty
    assert out[1].subject_tags == ["turtle", "sketch"] and out[1].tags_source == "text"


def test_json_round_trip_of_a_real_analysis(results):
    from agents.measure.analysis_types import VisualAnalysis

    a = results["human_line"]
    assert VisualAnalysis.from_dict(a.to_dict()) == a
