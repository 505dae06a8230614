"""Image normalisation shared by every agent that looks at pixels.

Agents take numpy arrays (H, W, C) in RGB order, uint8 or float in 0..1. Everything here turns
the many shapes users feed in (grayscale, RGBA, coloured strokes, light-on-dark, scanned paper)
into one canonical form, or fails with a message that names the image.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import cv2
import numpy as np

from .image_header import ImageHeaderError, check_header, check_image_file, image_limits

MIN_SIDE = image_limits().min_side  # below this no stroke statistic means anything (image_limits.toml)


class ImageInputError(ValueError):
    """Raised for an image that cannot be analysed; the message names the image and the problem."""


class ImageValueWarning(UserWarning):
    """Pixel values that were read in a way the caller may not expect (the message says how)."""


def check_image(path: str | Path) -> None:
    """The cheap check before any decoding: the file exists and its header declares a size inside the
    limits of image_limits.toml (ImageInputError naming the file and its size otherwise)."""
    try:
        check_image_file(path)
    except ImageHeaderError as exc:
        raise ImageInputError(str(exc)) from None


def load_image(path: str | Path) -> np.ndarray:
    """Read an image file as RGB(A) uint8, with a clear error for missing, unreadable or oversized files
    (the header is checked before the file is read whole or decoded)."""
    p = Path(path)
    check_image(p)
    return decode_image(p.read_bytes(), p.name)


def decode_image(data: bytes, name: str) -> np.ndarray:
    """An image file's bytes as RGB(A) uint8 (see load_image); errors name `name`. The header's declared
    size is checked against image_limits.toml before anything is decoded."""
    try:
        check_header(data[:1 << 20], name, len(data))
    except ImageHeaderError as exc:
        raise ImageInputError(str(exc)) from None
    buf = np.frombuffer(data, dtype=np.uint8)
    try:
        img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED) if buf.size else None
    except cv2.error:
        img = None
    if img is None:
        raise ImageInputError(f"cannot read {name}: its pixel data is truncated or corrupt")
    if img.dtype == np.uint16:
        img = (img / 257.0).astype(np.uint8)
    if img.ndim == 3 and img.shape[2] == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2RGBA)
    if img.ndim == 3:
        return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    return img


def _checked_array(image: object, name: str) -> np.ndarray:
    """(H, W, C) view of `image` after the shape and size checks; pixel values are not looked at."""
    if not isinstance(image, np.ndarray):
        raise ImageInputError(f"{name}: expected a numpy array, got {type(image).__name__}")
    arr = image
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 2, 3, 4):
        raise ImageInputError(f"{name}: expected shape (H, W), (H, W, 1|3|4), got {tuple(image.shape)}")
    h, w = arr.shape[:2]
    if min(h, w) < MIN_SIDE:
        raise ImageInputError(f"{name}: {w}x{h} is too small to analyse (each side must be at least {MIN_SIDE} px)")
    return arr


def _check_float(f: np.ndarray, name: str) -> None:
    # min and max propagate NaN and reach +-inf, so two passes check finiteness and range together.
    lo, hi = float(f.min()), float(f.max())
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise ImageInputError(f"{name}: contains NaN or infinite pixel values")
    if lo < -1e-3 or hi > 1.0 + 1e-3:
        raise ImageInputError(f"{name}: float pixels must lie in 0..1, found {lo:.3g}..{hi:.3g}")


def _float01(arr: np.ndarray, name: str) -> np.ndarray:
    """Pixels as a new float32 array in 0..1 (any channel count); float input is checked first."""
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / 255.0
    if arr.dtype == np.uint16:
        return arr.astype(np.float32) / uint16_full_scale(arr, name)
    if np.issubdtype(arr.dtype, np.floating):
        f = arr.astype(np.float32, copy=False)
        _check_float(f, name)
        return np.clip(f, 0.0, 1.0)  # always a copy: callers may write to it, never to the caller's image
    raise ImageInputError(f"{name}: unsupported pixel type {arr.dtype}")


def uint16_full_scale(arr: np.ndarray, name: str) -> float:
    """What a uint16 array's white is: 65535, or 255 when no value exceeds 255 (8-bit values stored in a
    16-bit array would otherwise read as near-black); the second case is said in an ImageValueWarning."""
    if arr.size and int(arr.max()) <= 255:
        warnings.warn(f"{name}: a uint16 image whose values all lie in 0..255 is read as 8-bit (255 = white)",
                      ImageValueWarning, stacklevel=3)
        return 255.0
    return 65535.0


def _canonical_rgb(f: np.ndarray) -> np.ndarray:
    """Float (H, W, 1..4) in 0..1 -> contiguous (H, W, 3); alpha is composited on white paper."""
    if f.shape[2] in (2, 4):
        alpha = f[:, :, -1:]
        f = f[:, :, :-1] * alpha + (1.0 - alpha)
    if f.shape[2] == 1:
        f = np.repeat(f, 3, axis=2)
    return np.ascontiguousarray(f, dtype=np.float32)


def _composite_table() -> np.ndarray:
    """(alpha << 8 | value) -> the float32 _canonical_rgb gives a uint8 value under a uint8 alpha."""
    v = np.arange(256, dtype=np.float32) / 255.0  # the same float32 operations as _float01 ...
    a = v[:, None]
    return np.ascontiguousarray((v[None, :] * a + (1.0 - a)).ravel())  # ... and _canonical_rgb


_COMPOSITE = _composite_table()


def _composite_u8(arr: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 2|4) on white paper, bit for bit what the float route gives, ~2x faster: each
    output depends on one (value, alpha) pair, so a 65536-entry table replaces the float arithmetic."""
    alpha = arr[:, :, -1].astype(np.uint16) << 8
    colour = arr[:, :, :-1] if arr.shape[2] == 4 else np.repeat(arr[:, :, :1], 3, axis=2)
    return np.take(_COMPOSITE, colour + alpha[:, :, None])


def to_rgb_float(image: np.ndarray, name: str = "image") -> np.ndarray:
    """Return (H, W, 3) float32 RGB in 0..1; alpha is composited on white paper."""
    arr = _checked_array(image, name)
    if arr.dtype == np.uint8 and arr.shape[2] in (2, 4):
        return _composite_u8(arr)
    return _canonical_rgb(_float01(arr, name))


def to_rgb_float_within(image: np.ndarray, max_side: int, name: str = "image") -> tuple[np.ndarray, float]:
    """fit_within(to_rgb_float(image, name), max_side) without a full-size float RGB copy.

    Integer images without alpha are area-downscaled as uint16, then converted: pixels differ from
    the float route by at most 1e-5 (rounding to 1/65535), a third of the cost. Float images
    are checked at full size (a NaN or out-of-range pixel must not be averaged away) and only the
    small copy is clipped. Gray images are resized as one plane and spread to RGB afterwards.
    Images with alpha are composited at full size (it does not commute with integer rounding), uint8
    ones through an exact table.
    """
    arr = _checked_array(image, name)
    if arr.shape[2] in (2, 4):
        return fit_within(to_rgb_float(image, name), max_side)
    planes = np.ascontiguousarray(arr if arr.shape[2] == 3 else arr[:, :, 0])
    if arr.dtype == np.uint16 and uint16_full_scale(arr, name) == 255.0:
        planes = planes * np.uint16(257)  # 8-bit values in a 16-bit array: the uint8 route's widening
    if arr.dtype in (np.uint8, np.uint16):
        if arr.dtype == np.uint8 and max(arr.shape[:2]) > max_side:
            # v * 257 / 65535 == v / 255: widening is exact, and the area filter then rounds its
            # averages to 1/65535 instead of 1/255, so thresholds downstream see float-route values.
            planes = planes.astype(np.uint16) * np.uint16(257)
        small, scale = fit_within(planes, max_side)
        f = small.astype(np.float32) / 255.0 if small.dtype == np.uint8 else small.astype(np.float32) / 65535.0
    elif np.issubdtype(arr.dtype, np.floating):
        f32 = planes.astype(np.float32, copy=False)  # cv2.resize takes neither float16 nor (here) float64
        _check_float(f32, name)
        small, scale = fit_within(f32, max_side)
        f = np.clip(small, 0.0, 1.0)
    else:
        raise ImageInputError(f"{name}: unsupported pixel type {arr.dtype}")
    return _canonical_rgb(f[:, :, None] if f.ndim == 2 else f), scale


def border_colour(rgb: np.ndarray) -> np.ndarray:
    """Median colour of an (H, W, 3) image's two-pixel border: its paper or background."""
    border = np.concatenate([rgb[:2].reshape(-1, 3), rgb[-2:].reshape(-1, 3),
                             rgb[:, :2].reshape(-1, 3), rgb[:, -2:].reshape(-1, 3)])
    return np.median(border, axis=0)


def max_channel_distance(rgb: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """Per pixel max over channels of |rgb - colour|; plane by plane, because numpy's reduction over a
    length-3 last axis is several times slower than the arithmetic itself."""
    planes = cv2.split(rgb)
    # OpenCV takes a scalar as the second operand; its type stubs only list arrays.
    out = cv2.absdiff(planes[0], float(colour[0]))  # type: ignore[call-overload]
    for plane, value in zip(planes[1:], colour[1:], strict=True):
        out = cv2.max(out, cv2.absdiff(plane, float(value)))  # type: ignore[call-overload]
    return out


def fit_within(rgb: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """Downscale so the longer side is at most max_side (area filter); returns (image, scale)."""
    h, w = rgb.shape[:2]
    longest = max(h, w)
    if longest <= max_side:
        return rgb, 1.0
    s = max_side / float(longest)
    size = (max(1, round(w * s)), max(1, round(h * s)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA), s


def to_gray(rgb: np.ndarray) -> np.ndarray:
    """Luma in 0..1 (float32)."""
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


def saturation(rgb: np.ndarray) -> np.ndarray:
    """HSV saturation in 0..1 (float32)."""
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)[:, :, 1]
