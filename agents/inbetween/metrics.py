"""Line-art frame metrics: AnimeInbet chamfer distance, line F-score, Hausdorff, grey (ghost) share.

Chamfer distance as AnimeInbet (ICCV 2023) defines it: ink = pixel < 0.99 * 255 (here luma < 0.99
on 0..1); CD = the mean, over both directions, of the distance transform of one image's ink
sampled at the other's ink pixels, divided by the image diagonal. Two blank frames have CD 0; a
blank frame against an inked one has CD 1 (the worst).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .ink import luma

ANIMEINBET_INK = 0.99


@dataclass(frozen=True)
class InkField:
    """A frame's ink (AnimeInbet threshold) and the exact distance from every pixel to it."""

    ink: np.ndarray
    distance: np.ndarray
    diagonal: float

    @property
    def empty(self) -> bool:
        return not bool(self.ink.any())


def ink_field(rgb_or_gray: np.ndarray) -> InkField:
    gray = luma(rgb_or_gray) if rgb_or_gray.ndim == 3 else rgb_or_gray
    ink = gray < ANIMEINBET_INK
    h, w = ink.shape
    if ink.any():
        dist = cv2.distanceTransform((~ink).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    else:
        dist = np.full(ink.shape, np.inf, np.float32)
    return InkField(ink, dist, float(np.hypot(h, w)))


def chamfer(a: InkField, b: InkField) -> float:
    """AnimeInbet chamfer distance between two frames (diagonal units)."""
    if a.empty and b.empty:
        return 0.0
    if a.empty or b.empty:
        return 1.0
    ab = float(b.distance[a.ink].mean())
    ba = float(a.distance[b.ink].mean())
    return 0.5 * (ab + ba) / a.diagonal


def f_score(pred: InkField, truth: InkField, tolerance: float = 2.0) -> float:
    """Line F-score: precision = predicted ink within `tolerance` px of true ink, recall the reverse."""
    if pred.empty and truth.empty:
        return 1.0
    if pred.empty or truth.empty:
        return 0.0
    precision = float((truth.distance[pred.ink] <= tolerance).mean())
    recall = float((pred.distance[truth.ink] <= tolerance).mean())
    return 0.0 if precision + recall == 0 else 2.0 * precision * recall / (precision + recall)


def hausdorff(a: InkField, b: InkField) -> float:
    """Symmetric Hausdorff distance in px (the diagonal when one frame is blank)."""
    if a.empty and b.empty:
        return 0.0
    if a.empty or b.empty:
        return a.diagonal
    return float(max(b.distance[a.ink].max(), a.distance[b.ink].max()))


def grey_share(gray: np.ndarray, paper: float, dark: float, low: float, high: float) -> float:
    """Share of the marked pixels that are grey: contrast (paper - luma) / (paper - dark) between
    low and high. Ghosts of a cross-dissolve are such grey strokes; crisp line art has few."""
    span = max(paper - dark, 1e-6)
    contrast = (paper - gray) / span
    marked = contrast > low
    n = int(marked.sum())
    return 0.0 if n == 0 else float((marked & (contrast < high)).sum()) / n
