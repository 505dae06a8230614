"""Ink maps, distance fields and stroke rendering for line art on paper."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from skimage.morphology import skeletonize

PAPER_PERCENTILE = 90.0  # the paper is the bright majority of a line drawing
INK_PERCENTILE = 1.0  # the darkest strokes


def luma(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) float 0..1 -> (H, W) float32 Rec. 601 luma."""
    return (rgb[:, :, 0] * 0.299 + rgb[:, :, 1] * 0.587 + rgb[:, :, 2] * 0.114).astype(np.float32)


@dataclass(frozen=True)
class KeyInk:
    """One key's ink map and the look of its strokes."""

    ink: np.ndarray  # (H, W) bool
    distance: np.ndarray  # (H, W) float32: px to the nearest ink, capped
    width: int  # stroke width in px (odd, >= 1)
    paper: np.ndarray  # (3,) paper colour
    colour: np.ndarray  # (3,) median ink colour


def ink_map(gray: np.ndarray, ink_cfg: Mapping[str, Any]) -> np.ndarray:
    paper = float(np.percentile(gray, PAPER_PERCENTILE))
    dark = float(np.percentile(gray, INK_PERCENTILE))
    cut = paper - max(float(ink_cfg["min_contrast"]), float(ink_cfg["threshold"]) * (paper - dark))
    return np.asarray(gray < cut)


def distance_to_ink(ink: np.ndarray, cap: float) -> np.ndarray:
    if not ink.any():
        return np.full(ink.shape, cap, np.float32)
    dt = cv2.distanceTransform((~ink).astype(np.uint8), cv2.DIST_L2, 5)
    return np.minimum(dt, np.float32(cap))


def stroke_width(ink: np.ndarray) -> int:
    """Median stroke width (odd px): twice the distance to paper along the skeleton, minus one."""
    sk = skeletonize(ink)
    if not sk.any():
        return 1
    inside = cv2.distanceTransform(ink.astype(np.uint8), cv2.DIST_L2, 5)
    w = max(1, int(round(2.0 * float(np.median(inside[sk])) - 1.0)))
    return w if w % 2 else w + 1


def key_ink(rgb: np.ndarray, ink_cfg: Mapping[str, Any]) -> KeyInk:
    ink = ink_map(luma(rgb), ink_cfg)
    paper_px = rgb[~ink] if (~ink).any() else np.ones((1, 3), np.float32)
    colour_px = rgb[ink] if ink.any() else np.zeros((1, 3), np.float32)
    return KeyInk(ink, distance_to_ink(ink, float(ink_cfg["dt_cap"])), stroke_width(ink),
                  np.median(paper_px, axis=0).astype(np.float32), np.median(colour_px, axis=0).astype(np.float32))


def _disk(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def thin_to_width(band: np.ndarray, width: int, close_radius: int) -> np.ndarray:
    """A band of probable ink -> one centre line per stroke drawn at `width` px (no doubled lines)."""
    b = np.asarray(band, np.uint8)
    if close_radius > 0:
        b = np.asarray(cv2.morphologyEx(b, cv2.MORPH_CLOSE, _disk(close_radius)), np.uint8)
    centre = np.asarray(skeletonize(b.astype(bool)), np.uint8)
    if width > 1:
        return np.asarray(cv2.dilate(centre, _disk(width // 2)) > 0)
    return centre.astype(bool)


def render(ink: np.ndarray, paper: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """Binary ink -> (H, W, 3) float32: ink colour on paper colour, no grey between."""
    out = np.empty(ink.shape + (3,), np.float32)
    out[...] = paper
    out[ink] = colour
    return out
