"""Issue 11 item 2 (and the uint16 case of item 10): an image's declared size is read from its header
before anything is decoded, every loader refuses above the configurable limit with one line naming the
file and its size, and `./m4 plan` decodes each file once."""

from __future__ import annotations

import struct
import subprocess
import sys
import warnings
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from agents.measure.image_header import ImageHeaderError, read_header
from agents.measure.imaging import (
    ImageInputError,
    ImageValueWarning,
    decode_image,
    load_image,
    to_rgb_float,
    to_rgb_float_within,
)

REPO = Path(__file__).resolve().parents[2]


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def huge_png(width: int, height: int) -> bytes:
    """A small, valid-looking PNG whose header declares width x height (its data holds one row only)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    row = zlib.compress(b"\x00" + b"\xff" * min(width, 4096))
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", row) + _chunk(b"IEND", b"")


@pytest.mark.parametrize("ext", [".png", ".jpg", ".webp", ".bmp", ".tiff", ".pgm", ".ppm"])
def test_header_gives_the_declared_size_of_every_format(ext: str) -> None:
    img = np.full((37, 53, 3), 200, np.uint8)
    if ext == ".pgm":
        img = img[:, :, 0]
    ok, data = cv2.imencode(ext, img)
    assert ok
    header = read_header(data.tobytes(), "x" + ext)
    assert (header.width, header.height) == (53, 37)


def test_header_of_gif_and_lossless_webp() -> None:
    gif = b"GIF89a" + struct.pack("<HH", 640, 480) + b"\x00" * 8
    assert (read_header(gif, "a.gif").width, read_header(gif, "a.gif").height) == (640, 480)
    ok, data = cv2.imencode(".webp", np.zeros((21, 34, 3), np.uint8), [cv2.IMWRITE_WEBP_QUALITY, 101])
    lossless = read_header(data.tobytes(), "l.webp")
    assert ok and (lossless.width, lossless.height) == (34, 21)


def test_unknown_or_truncated_headers_are_named() -> None:
    with pytest.raises(ImageHeaderError, match="cannot read notes.txt: not a PNG"):
        read_header(b"hello world", "notes.txt")
    with pytest.raises(ImageHeaderError, match="cut.png: its PNG header is truncated"):
        read_header(b"\x89PNG\r\n\x1a\n\x00\x00", "cut.png")


def test_a_huge_declared_size_is_refused_before_decoding(tmp_path: Path) -> None:
    # 60000x60000 raised a raw cv2.error from inside OpenCV before; 30000x30000 drove memory past 8 GB.
    for side in (60000, 30000):
        path = tmp_path / f"bomb{side}.png"
        path.write_bytes(huge_png(side, side))
        with pytest.raises(ImageInputError, match=rf"bomb{side}.png: {side}x{side} pixels .* above the limit"):
            load_image(path)
        with pytest.raises(ImageInputError, match=f"{side}x{side}"):
            decode_image(path.read_bytes(), path.name)


def test_the_limit_is_configurable_and_validated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "white.png"
    cv2.imwrite(str(path), np.full((400, 400, 3), 255, np.uint8))
    assert load_image(path).shape == (400, 400, 3)
    monkeypatch.setenv("M4_MAX_IMAGE_PIXELS", "65536")
    with pytest.raises(ImageInputError, match="white.png: 400x400 pixels .* limit of 65536"):
        load_image(path)
    monkeypatch.setenv("M4_MAX_IMAGE_PIXELS", "lots")
    with pytest.raises(ValueError, match="M4_MAX_IMAGE_PIXELS: expected an integer"):
        load_image(path)


def test_truncated_pixel_data_is_a_named_error(tmp_path: Path) -> None:
    ok, data = cv2.imencode(".png", (np.random.default_rng(0).random((300, 300)) * 255).astype(np.uint8))
    path = tmp_path / "cut.png"
    path.write_bytes(data.tobytes()[:400])
    with pytest.raises(ImageInputError, match="cut.png"):
        load_image(path)


def _plan(argv: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run([sys.executable, "-m", "cli", "plan", *argv], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=120, check=False)


def test_plan_refuses_a_huge_image_with_one_line(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(huge_png(60000, 60000))
    done = _plan(["--sketch", str(bomb), "--no-reference", "--out", str(tmp_path / "o")])
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [done.stderr.strip()]
    assert done.stderr.startswith("error: --sketch: bomb.png: 60000x60000 pixels")
    assert "Traceback" not in done.stderr


def test_plan_decodes_each_file_once(fixture_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cli.plan_cmd import main as plan_main

    calls: list[int] = []
    real = cv2.imdecode

    def counting(buf: np.ndarray, flags: int) -> np.ndarray:
        calls.append(len(buf))
        return real(buf, flags)

    monkeypatch.setattr(cv2, "imdecode", counting)
    sketch = sorted((fixture_data / "sketches").glob("*.png"))[0]
    assert plan_main(["--sketch", str(sketch), "--no-reference", "--out", str(tmp_path)]) == 0
    assert len(calls) == 1


def test_uint16_array_holding_8bit_values_is_read_as_8bit_with_a_warning() -> None:
    gray8 = np.tile(np.arange(0, 256, 4, dtype=np.uint8), (64, 1))
    as16 = gray8.astype(np.uint16)
    with pytest.warns(ImageValueWarning, match="uint16 image whose values all lie in 0..255"):
        got = to_rgb_float(as16, "sketch")
    assert np.allclose(got, to_rgb_float(gray8), atol=1e-6)
    with pytest.warns(ImageValueWarning):
        small, _ = to_rgb_float_within(np.repeat(as16, 8, axis=0), 32, "sketch")
    expected, _ = to_rgb_float_within(np.repeat(gray8, 8, axis=0), 32, "sketch")
    assert np.allclose(small, expected, atol=1e-5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        real16 = (gray8.astype(np.uint16) * 257)
        assert np.allclose(to_rgb_float(real16), to_rgb_float(gray8), atol=1e-6)
