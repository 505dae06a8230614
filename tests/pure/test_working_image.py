"""Fast paths of Reference Compare agree with the straightforward computations they replace."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage.morphology import skeletonize

from agents.measure.accessory_conflict import _coordinate_percentiles, _stroke_width
from agents.measure.imaging import (
    ImageInputError,
    fit_within,
    load_image,
    max_channel_distance,
    to_rgb_float,
    to_rgb_float_within,
)
from agents.measure.reference_compare import compare

REAL = ["sketches/human_line.png", "sketches/user_1.png", "references/madoka.jpg", "references/saber.png"]


def _big(fixture_data, rel: str) -> np.ndarray:
    """A real image upscaled past the working size, so the fast path really downscales."""
    img = load_image(fixture_data / rel)
    return cv2.resize(img, (1100, 900), interpolation=cv2.INTER_CUBIC)


@pytest.mark.parametrize("rel", REAL)
def test_within_matches_convert_then_downscale(fixture_data, rel) -> None:
    img = _big(fixture_data, rel)
    variants = {
        "native": img,  # uint8, RGB or RGBA
        "rgb_float32": to_rgb_float(img),
        "gray_uint8": cv2.cvtColor(img[:, :, :3], cv2.COLOR_RGB2GRAY),
        "rgb_uint16": (img[:, :, :3].astype(np.uint16) * 257),
    }
    for label, arr in variants.items():
        want, want_scale = fit_within(to_rgb_float(arr), 512)
        got, scale = to_rgb_float_within(arr, 512)
        assert got.shape == want.shape and got.dtype == np.float32, label
        assert scale == want_scale, label
        # Integer input is downscaled as uint16: rounding to 1/65535, far below one 8-bit step.
        assert float(np.abs(got - want).max()) <= 2e-5, label


def test_within_small_image_is_a_copy_not_a_view() -> None:
    src = np.full((40, 30, 3), 0.5, np.float32)
    out, scale = to_rgb_float_within(src, 512)
    assert scale == 1.0 and out.shape == (40, 30, 3)
    out[:] = 0.0
    assert float(src.min()) == 0.5


@pytest.mark.parametrize(
    ("bad_pixel", "pattern"),
    [(np.nan, "contains NaN or infinite"), (-0.5, "float pixels must lie in 0..1"),
     (1.5, "float pixels must lie in 0..1")],
)
def test_one_bad_pixel_in_a_large_float_image_is_not_averaged_away(bad_pixel, pattern) -> None:
    img = np.full((1024, 1024, 3), 0.5, np.float32)
    img[511, 511, 1] = bad_pixel  # a 2x2 area average would dilute it to a valid-looking value
    with pytest.raises(ImageInputError, match="reference: " + pattern):
        to_rgb_float_within(img, 512, "reference")
    with pytest.raises(ImageInputError, match="reference: " + pattern):
        compare(np.ones((64, 64, 3), np.float32), img)


def test_within_rejects_what_to_rgb_float_rejects() -> None:
    for arr, pattern in [(np.ones((10, 40, 3), np.float32), "too small"),
                         (np.ones((32, 32, 5), np.float32), "expected shape"),
                         (np.ones((600, 600, 3), np.int64), "unsupported pixel type")]:
        with pytest.raises(ImageInputError, match=pattern):
            to_rgb_float_within(arr, 512, "sketch")


@pytest.mark.parametrize("rel", REAL)
def test_max_channel_distance_matches_numpy(fixture_data, rel) -> None:
    rgb, _ = fit_within(to_rgb_float(load_image(fixture_data / rel)), 512)
    colour = np.median(rgb[:2].reshape(-1, 3), axis=0)
    want = np.abs(rgb - colour[None, None, :]).max(axis=2)
    np.testing.assert_allclose(max_channel_distance(rgb, colour), want, rtol=0, atol=1e-7)


def test_coordinate_percentiles_match_numpy_on_random_masks() -> None:
    rng = np.random.default_rng(7)
    for _ in range(200):
        h, w = (int(v) for v in rng.integers(1, 300, 2))
        mask = (rng.random((h, w)) < rng.random() * 0.3).astype(np.uint8)
        if not mask.any():
            continue
        ys, xs = np.nonzero(mask)
        want = tuple(int(v) for v in np.percentile(ys, [1, 99])) + tuple(int(v) for v in np.percentile(xs, [1, 99]))
        assert _coordinate_percentiles(mask.sum(axis=1)) + _coordinate_percentiles(mask.sum(axis=0)) == want


def _full_size_stroke_width(dark: np.ndarray) -> float:
    if not dark.any():
        return 0.0
    dist = cv2.distanceTransform(dark.astype(np.uint8), cv2.DIST_L2, 3)
    values = dist[skeletonize(dark)]
    return float(2.0 * np.median(values)) if values.size else 0.0


def test_stroke_width_on_the_cropped_skeleton_equals_the_full_size_one(fixture_data) -> None:
    rng = np.random.default_rng(3)
    masks = []
    for rel in REAL:  # real drawings' dark pixels, as head_blobs feeds them
        rgb, _ = fit_within(to_rgb_float(load_image(fixture_data / rel)), 512)
        masks.append(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) < 0.3)
    for _ in range(150):  # strokes of many widths, some running off the canvas edge, some specks
        h, w = (int(v) for v in rng.integers(20, 260, 2))
        img = np.zeros((h, w), np.uint8)
        for _ in range(int(rng.integers(1, 6))):
            p0 = tuple(int(v) for v in rng.integers(-10, max(h, w) + 10, 2))
            p1 = tuple(int(v) for v in rng.integers(-10, max(h, w) + 10, 2))
            cv2.line(img, p0, p1, 1, int(rng.integers(1, 12)))
        if rng.random() < 0.3:
            img[rng.random((h, w)) < 0.05] = 1
        masks.append(img.astype(bool))
    masks.append(np.zeros((50, 50), bool))
    for dark in masks:
        assert _stroke_width(dark) == _full_size_stroke_width(dark)


@pytest.mark.parametrize(("sketch", "reference"), [("sketches/user_1.png", "references/madoka.jpg"),
                                                   ("sketches/human_line.png", "references/saber.png")])
def test_compare_gives_the_same_report_for_uint8_and_float_input(fixture_data, sketch, reference) -> None:
    s, r = _big(fixture_data, sketch), _big(fixture_data, reference)
    a = compare(s, r)
    b = compare(to_rgb_float(s), to_rgb_float(r))
    for name in ("similarity", "style_distance", "saturation", "accessory_conflict", "conflict_penalty"):
        assert getattr(a, name) == pytest.approx(getattr(b, name), abs=2e-3), name
    assert a.colored == b.colored
    assert a.measurements["head_blobs_reference"] == b.measurements["head_blobs_reference"]
    assert a.measurements["head_blobs_sketch"] == b.measurements["head_blobs_sketch"]
