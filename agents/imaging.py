"""Image normalisation shared by every agent that looks at pixels.

Agents take numpy arrays (H, W, C) in RGB order, uint8 or float in 0..1. Everything here turns
the many shapes users feed in (grayscale, RGBA, coloured strokes, light-on-dark, scanned paper)
into one canonical form, or fails with a message that names the image.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

MIN_SIDE = 16  # below this no stroke statistic means anything


class ImageInputError(ValueError):
    """Raised for an image that cannot be analysed; the message names the image and the problem."""


def load_image(path: str | Path) -> np.ndarray:
    """Read an image file as RGB(A) uint8, with a clear error for missing or unreadable files."""
    p = Path(path)
    if not p.is_file():
        raise ImageInputError(f"image file not found: {p}")
    data = np.fromfile(str(p), dtype=np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if img is None:
        raise ImageInputError(f"cannot read {p.name}: not an image format OpenCV can decode")
    if img.dtype == np.uint16:
        img = (img / 257.0).astype(np.uint8)
    if img.ndim == 3 and img.shape[2] == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2RGBA)
    if img.ndim == 3:
        return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    return img


def to_rgb_float(image: np.ndarray, name: str = "image") -> np.ndarray:
    """Return (H, W, 3) float32 RGB in 0..1; alpha is composited on white paper."""
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
    if arr.dtype == np.uint8:
        f = arr.astype(np.float32) / 255.0
    elif arr.dtype == np.uint16:
        f = arr.astype(np.float32) / 65535.0
    elif np.issubdtype(arr.dtype, np.floating):
        f = arr.astype(np.float32, copy=False)
        if not np.isfinite(f).all():
            raise ImageInputError(f"{name}: contains NaN or infinite pixel values")
        if f.min() < -1e-3 or f.max() > 1.0 + 1e-3:
            raise ImageInputError(f"{name}: float pixels must lie in 0..1, found {f.min():.3g}..{f.max():.3g}")
        f = np.clip(f, 0.0, 1.0)
    else:
        raise ImageInputError(f"{name}: unsupported pixel type {arr.dtype}")
    c = f.shape[2]
    if c in (2, 4):  # gray+alpha or RGBA: composite on white
        alpha = f[:, :, -1:]
        colour = f[:, :, :-1]
        f = colour * alpha + (1.0 - alpha)
    if f.shape[2] == 1:
        f = np.repeat(f, 3, axis=2)
    return np.ascontiguousarray(f, dtype=np.float32)


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
