"""Classical image features Reference Compare uses: line maps, HOG-style layout, style statistics.

Drawings and colour illustrations are compared fairly by first turning both into a line map:
"ink" is how much darker a pixel is than its neighbourhood, which picks out a drawing's strokes
and an illustration's outlines and dark folds, and ignores flat colour fills.
"""

from __future__ import annotations

import cv2
import numpy as np

from .imaging import fit_within, to_gray
from .measure_data import measure_data

# Statistics are taken at this longer side so image size does not change them (measure.toml
# [working_size] compare_side; the Visual Analyst's is analysis_side, the Line Quality Analyzer's
# line_quality_side: three sides, one table).
WORK_SIDE: int = measure_data()["working_size"]["compare_side"]
LAYOUT_SIDE = 128  # both line maps are squashed to this square before the layout descriptor
ORIENT_BINS = 9  # unsigned gradient orientation bins (20 degrees each)
GRIDS = (4, 8)  # cell grids of the two-level descriptor: coarse layout + finer structure


def working_gray(rgb: np.ndarray) -> np.ndarray:
    """Luma (0..1) at WORK_SIDE, so every statistic below is resolution independent."""
    small, _ = fit_within(rgb, WORK_SIDE)
    return to_gray(small)


def line_map(gray: np.ndarray) -> np.ndarray:
    """Ink strength 0..1: darkness relative to a blurred copy (a difference-of-Gaussians sketch).

    A contrast of 0.25 below the local mean counts as full ink; flat regions of any colour give 0.
    """
    sigma = max(1.5, 0.006 * max(gray.shape))
    local = cv2.GaussianBlur(gray, (0, 0), sigma)
    return np.clip((local - gray) / 0.25, 0.0, 1.0).astype(np.float32)


def layout_descriptor(lines: np.ndarray) -> np.ndarray:
    """Histogram-of-oriented-gradients of a line map on GRIDS cell grids, one flat vector.

    The map is resized to a square (aspect is layout, not content, for our purposes) and lightly
    blurred so a stroke displaced by a few pixels still lands in a neighbouring bin. Each grid level
    is L2-normalised on its own, so coarse layout and finer structure weigh the same.
    """
    sq = cv2.resize(lines, (LAYOUT_SIDE, LAYOUT_SIDE), interpolation=cv2.INTER_AREA)
    sq = cv2.GaussianBlur(sq, (0, 0), 1.5)
    gx = cv2.Sobel(sq, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(sq, cv2.CV_32F, 0, 1, ksize=3)
    mag = np.hypot(gx, gy)
    ang = np.mod(np.arctan2(gy, gx), np.pi)
    bins = np.minimum((ang / np.pi * ORIENT_BINS).astype(np.int32), ORIENT_BINS - 1)
    parts = []
    for grid in GRIDS:
        cell = LAYOUT_SIDE // grid
        rows = np.arange(LAYOUT_SIDE) // cell
        idx = (rows[:, None] * grid + rows[None, :]) * ORIENT_BINS + bins
        hist = np.bincount(idx.ravel(), weights=mag.ravel(), minlength=grid * grid * ORIENT_BINS)
        hist = np.sqrt(hist)  # damp a few very strong edges (a black border, a dark mass)
        norm = float(np.linalg.norm(hist))
        parts.append(hist / norm if norm > 0 else hist)
    return np.concatenate(parts).astype(np.float64)


def descriptor_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two layout descriptors, negative values clipped to 0.

    Correlation rather than raw cosine: HOG vectors are non-negative, so unrelated pictures already
    have a cosine near 0.5; centring makes unrelated ~0 and identical 1.
    """
    ac = a - a.mean()
    bc = b - b.mean()
    den = float(np.linalg.norm(ac) * np.linalg.norm(bc))
    if den <= 1e-12:
        return 0.0
    return float(np.clip(np.dot(ac, bc) / den, 0.0, 1.0))


def edge_density(gray: np.ndarray) -> float:
    """Share of pixels on a Canny edge (thresholds on 0..255 luma, fixed so images compare)."""
    u8 = np.clip(gray * 255.0 + 0.5, 0, 255).astype(np.uint8)
    edges = cv2.Canny(cv2.GaussianBlur(u8, (0, 0), 1.0), 50, 150)
    return float(np.count_nonzero(edges)) / float(edges.size)


def gray_contrast(gray: np.ndarray) -> float:
    """RMS contrast: standard deviation of luma (0..0.5)."""
    return float(gray.std())
