"""Palettes as gradients interpolated in CIE Lab: the curated set from patterns.toml, or one taken from
a reference image (k-means in Lab, ordered by lightness). A palette is a [N, 3] sRGB lookup table."""

from __future__ import annotations

import cv2
import numpy as np
from skimage.color import lab2rgb, rgb2lab

from .config import PatternsConfig, default_config
from .errors import PatternsError


def _hex_to_rgb(colours: tuple[str, ...]) -> np.ndarray:
    return np.array([[int(c[i:i + 2], 16) / 255.0 for i in (1, 3, 5)] for c in colours])


def gradient_lut(rgb_stops: np.ndarray, size: int) -> np.ndarray:
    """Evenly spaced stops [K, 3] in sRGB 0..1 -> [size, 3] sRGB, interpolated linearly in Lab."""
    lab = rgb2lab(rgb_stops[None, :, :])[0]
    pos = np.linspace(0.0, 1.0, lab.shape[0])
    q = np.linspace(0.0, 1.0, size)
    lab_q = np.stack([np.interp(q, pos, lab[:, i]) for i in range(3)], axis=1)
    return np.clip(lab2rgb(lab_q[None])[0], 0.0, 1.0).astype(np.float32)


def palette_names(config: PatternsConfig | None = None) -> list[str]:
    return sorted((config or default_config()).palettes)


def named_palette(name: str, config: PatternsConfig | None = None) -> np.ndarray:
    cfg = config or default_config()
    if name not in cfg.palettes:
        raise PatternsError(f"palette: unknown palette {name!r} (known: {', '.join(sorted(cfg.palettes))})")
    return gradient_lut(_hex_to_rgb(cfg.palettes[name]), cfg.rint("palette_lut_size"))


def palette_from_image(rgb: np.ndarray, config: PatternsConfig | None = None, seed: int = 0) -> np.ndarray:
    """A reference image [H, W, 3] float 0..1 -> its main colours as a lightness-ordered Lab gradient."""
    cfg = config or default_config()
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.size == 0 or not np.isfinite(rgb).all():
        raise PatternsError(f"palette_image: expected a finite [H, W, 3] image, got shape {tuple(rgb.shape)}")
    k = int(cfg.fields["reference_colours"])
    step = max(1, int(np.sqrt(rgb.shape[0] * rgb.shape[1] / 20000)))  # cluster at most ~20k pixels
    lab = rgb2lab(np.clip(rgb[::step, ::step], 0, 1)).reshape(-1, 3).astype(np.float32)
    k = min(k, len(np.unique(lab.round(1), axis=0)))
    if k < 2:
        return gradient_lut(np.repeat(lab2rgb(lab[:1][None])[0], 2, axis=0), cfg.rint("palette_lut_size"))
    cv2.setRNGSeed(seed)
    crit = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 30, 0.1)
    labels = np.zeros((lab.shape[0], 1), np.int32)
    _, _, centres = cv2.kmeans(lab, k, labels, crit, 3, cv2.KMEANS_PP_CENTERS)
    centres = centres[np.argsort(centres[:, 0])]
    return gradient_lut(lab2rgb(centres[None].astype(np.float64))[0], cfg.rint("palette_lut_size"))


def delta_e_to_palette(rgb: np.ndarray, lut: np.ndarray, max_pixels: int = 20000) -> float:
    """Mean CIE76 delta E from each pixel (subsampled) to the nearest colour of the palette."""
    px = rgb.reshape(-1, 3)
    if px.shape[0] > max_pixels:
        px = px[np.linspace(0, px.shape[0] - 1, max_pixels).astype(np.int64)]
    lab = rgb2lab(px[None].astype(np.float64))[0]
    pal = rgb2lab(lut[None].astype(np.float64))[0]
    d = np.sqrt(((lab[:, None, :] - pal[None, :, :]) ** 2).sum(axis=2)).min(axis=1)
    return float(d.mean())
