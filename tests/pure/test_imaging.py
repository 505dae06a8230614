"""Image normalisation: every accepted shape/type lands in one canonical form, the rest fail by name."""

from __future__ import annotations

import numpy as np
import pytest

from agents.measure.imaging import ImageInputError, fit_within, load_image, to_gray, to_rgb_float


def test_load_real_rgba_and_rgb(fixture_data):
    rgba = load_image(fixture_data / "sketches" / "human_line.png")
    rgb = load_image(fixture_data / "sketches" / "user_1.png")
    assert rgba.shape == (768, 768, 4) and rgba.dtype == np.uint8
    assert rgb.shape == (512, 512, 3)


def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(ImageInputError, match="not found"):
        load_image(tmp_path / "missing.png")
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not an image")
    with pytest.raises(ImageInputError, match="junk.png"):
        load_image(junk)


def test_alpha_is_composited_on_white():
    rgba = np.zeros((20, 20, 4), np.uint8)  # black colour, fully transparent
    rgba[5:10, 5:10, 3] = 255  # opaque black square
    out = to_rgb_float(rgba)
    assert out.shape == (20, 20, 3) and out.dtype == np.float32
    assert out[0, 0].tolist() == [1.0, 1.0, 1.0]
    assert out[7, 7].tolist() == [0.0, 0.0, 0.0]
    half = np.zeros((20, 20, 2), np.float32)
    half[..., 1] = 0.5  # gray+alpha: black at half opacity
    assert to_rgb_float(half)[0, 0].tolist() == pytest.approx([0.5, 0.5, 0.5])


def test_gray_uint16_and_float_inputs_agree():
    gray = (np.arange(32 * 32).reshape(32, 32) % 256).astype(np.uint8)
    a = to_rgb_float(gray)
    b = to_rgb_float(gray.astype(np.uint16) * 257)
    c = to_rgb_float(gray.astype(np.float64) / 255.0)
    assert np.allclose(a, b, atol=1e-6) and np.allclose(a, c, atol=1e-6)
    assert np.allclose(to_gray(a), a[:, :, 0], atol=1e-6)


@pytest.mark.parametrize(
    ("arr", "pattern"),
    [
        (np.ones((10, 40, 3), np.float32), "sketch: 40x10 is too small"),
        (np.ones((32, 32, 5), np.float32), "sketch: expected shape"),
        (np.full((32, 32, 3), 2.0, np.float32), "sketch: float pixels must lie in 0..1"),
        (np.full((32, 32, 3), np.inf, np.float32), "sketch: contains NaN or infinite"),
        (np.ones((32, 32, 3), np.int64), "sketch: unsupported pixel type"),
        ([[1, 2]], "sketch: expected a numpy array"),
    ],
)
def test_bad_inputs_raise_named_errors(arr, pattern):
    with pytest.raises(ImageInputError, match=pattern):
        to_rgb_float(arr, "sketch")


def test_fit_within_bounds_the_longer_side():
    img = np.zeros((300, 1200, 3), np.float32)
    out, s = fit_within(img, 600)
    assert out.shape == (150, 600, 3) and s == pytest.approx(0.5)
    same, s1 = fit_within(img, 2000)
    assert same is img and s1 == 1.0


@pytest.mark.parametrize("channels", [2, 4])
def test_uint8_alpha_compositing_is_exact_for_every_value_and_alpha(channels: int) -> None:
    # uint8 images with alpha go through a lookup table; it must give what float32 arithmetic gives.
    v, a = np.meshgrid(np.arange(256, dtype=np.uint8), np.arange(256, dtype=np.uint8))
    colour = [v, v[::-1], np.roll(v, 7, axis=1)][: channels - 1]
    img = np.stack([*colour, a], axis=2)
    f = img.astype(np.float32) / np.float32(255.0)
    alpha = f[:, :, -1:]
    expected = f[:, :, :-1] * alpha + (np.float32(1.0) - alpha)
    if channels == 2:
        expected = np.repeat(expected, 3, axis=2)
    got = to_rgb_float(img)
    assert got.dtype == np.float32 and got.shape == (256, 256, 3)
    assert np.array_equal(got, expected)
    assert got[0, 0, 0] == 1.0 and got[255, 0, 0] == 0.0  # transparent -> paper, opaque black stays black
