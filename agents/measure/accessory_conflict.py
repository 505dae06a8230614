"""AC, the accessory-conflict signal (seed 004 section 16): an upper-face dark-blob mismatch heuristic.

What is computed, per image (at the 512 px working size):
1. Subject box: pixels that differ from the border's median colour by more than 0.12 (any RGB
   channel), closed into regions; the box spans the 1st..99th percentile of their coordinates.
2. Head region: the top HEAD_SHARE of that box (full box width), at most HEAD_WIDTH_CAP box widths
   tall - the eyes of a head-only portrait and the head of a standing figure both fall inside.
3. Dark blobs: subject pixels in the head region with luma < DARK_LUMA, morphologically opened
   with a disc of max(3% of the region width, 2.5 x the image's median dark-stroke width) so
   strokes (outlines, hair strands, marker lines) vanish and filled shapes remain; kept if their
   area is 0.2%..15% of the region and they are compact (solidity >= 0.6).
   Sunglasses lenses, an eye patch, a mask, a dark hat band survive.
4. Statistics: blob count (capped at MAX_BLOBS) and total blob area as a share of the region.

AC = 0.7 * area_term + 0.3 * count_term, where area_term = |a1 - a2| / max(a1, a2, AREA_FLOOR) and
count_term = |n1 - n2| / max(n1, n2, 2); both 0..1, so AC is 0..1 and 0 for identical images.

Limits (why AC is weighted down when fused into conflict_penalty): it sees dark filled shapes, not
accessories. Large filled pupils, dark hair fringes split into compact pieces, thick marker strokes
wider than the opening disc, and heads that are not at the top of the subject (lying figures,
upside-down poses) produce or hide blobs. Light-coloured accessories are invisible to it.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from skimage.morphology import skeletonize

from .image_features import WORK_SIDE
from .imaging import border_colour, fit_within, max_channel_distance, to_gray

HEAD_SHARE = 0.5
HEAD_WIDTH_CAP = 0.8  # a tall, full-figure box: the head region stops at 0.8 box widths
DARK_LUMA = 0.3
MAX_BLOBS = 6
AREA_FLOOR = 0.05  # area differences below ~5% of the region are never a full conflict
_BG_DIFF = 0.12
_MIN_AREA, _MAX_AREA = 0.002, 0.15
_MIN_SOLIDITY = 0.6


@dataclass(frozen=True)
class HeadBlobs:
    """Dark-blob statistics of one image's head region (box is x0, y0, x1, y1 at working size)."""

    found_subject: bool
    head_box: tuple[int, int, int, int]
    count: int
    area_share: float


def _subject_mask(rgb: np.ndarray) -> np.ndarray:
    mask = (max_channel_distance(rgb, border_colour(rgb)) > _BG_DIFF).astype(np.uint8)
    k = max(3, (max(rgb.shape[:2]) // 64) | 1)
    return cv2.morphologyEx(mask, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))


def _stroke_width(dark: np.ndarray) -> float:
    """Median stroke width of the dark pixels: twice the distance-to-paper along their skeleton."""
    u8 = dark.astype(np.uint8)
    box = cv2.boundingRect(u8)
    if box[2] == 0:
        return 0.0
    # Thinning only looks at 3x3 neighbours and outside the dark pixels' box (plus a one-pixel paper
    # margin) there is only paper, so thinning the crop gives the same skeleton at a fraction of the
    # cost. The distance transform stays full-size: on a crop its float sums can differ in the last bit.
    x, y, w, h = box
    rows, cols = slice(max(0, y - 1), y + h + 1), slice(max(0, x - 1), x + w + 1)
    dist = cv2.distanceTransform(u8, cv2.DIST_L2, 3)[rows, cols]
    skeleton = skeletonize(u8[rows, cols].astype(bool))
    values = dist[skeleton]
    return float(2.0 * np.median(values)) if values.size else 0.0


def _coordinate_percentiles(counts: np.ndarray) -> tuple[int, int]:
    """1st and 99th percentile (numpy's linear rule, truncated) of the coordinates of a mask's pixels,
    from the pixel count per row or column: the same sorted values as np.nonzero's, built faster."""
    coords = np.repeat(np.arange(counts.size), counts.astype(np.intp))
    lo, hi = np.percentile(coords, [1, 99])
    return int(lo), int(hi)


def head_blobs(rgb: np.ndarray) -> HeadBlobs:
    """Dark-blob statistics of the head region of `rgb` ((H, W, 3) float 0..1, already validated)."""
    small, _ = fit_within(rgb, WORK_SIDE)
    mask = _subject_mask(small)
    rows = cv2.reduce(mask, 1, cv2.REDUCE_SUM, dtype=cv2.CV_32S).ravel()
    if rows.sum() < 0.001 * mask.size:
        return HeadBlobs(False, (0, 0, 0, 0), 0, 0.0)
    cols = cv2.reduce(mask, 0, cv2.REDUCE_SUM, dtype=cv2.CV_32S).ravel()
    y0, y1 = _coordinate_percentiles(rows)
    x0, x1 = _coordinate_percentiles(cols)
    x1 = max(x1, x0 + 4)
    hy1 = y0 + max(4, round(min(HEAD_SHARE * (y1 - y0 + 1), HEAD_WIDTH_CAP * (x1 - x0 + 1))))
    dark_all = to_gray(small) < DARK_LUMA
    region_mask = mask[y0:hy1, x0:x1 + 1]
    region_dark = (dark_all[y0:hy1, x0:x1 + 1] & (region_mask > 0)).astype(np.uint8)
    # The disc must beat both the region scale and this drawing's own stroke width (marker sketches).
    d = max(3, round(0.03 * region_dark.shape[1]), round(2.5 * _stroke_width(dark_all)))
    dark = cv2.morphologyEx(region_dark, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (d, d)))
    region_area = float(dark.size)
    count, total = 0, 0.0
    n, labels, stats, _ = cv2.connectedComponentsWithStats(dark, connectivity=8)
    for i in range(1, n):
        area = float(stats[i, cv2.CC_STAT_AREA])
        if not (_MIN_AREA * region_area <= area <= _MAX_AREA * region_area):
            continue
        x, y, w, h = stats[i, :4]  # hull area does not move with the crop
        blob = (labels[y:y + h, x:x + w] == i).astype(np.uint8)
        contours, _ = cv2.findContours(blob, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        hull_area = float(cv2.contourArea(cv2.convexHull(np.concatenate(contours))))
        if hull_area <= 0 or area / hull_area < _MIN_SOLIDITY:
            continue
        count += 1
        total += area
    return HeadBlobs(True, (x0, y0, x1 + 1, hy1), min(count, MAX_BLOBS), total / region_area)


def accessory_conflict(a: HeadBlobs, b: HeadBlobs) -> float:
    """AC in 0..1 from two images' head-blob statistics (formula in the module docstring)."""
    area_term = abs(a.area_share - b.area_share) / max(a.area_share, b.area_share, AREA_FLOOR)
    count_term = abs(a.count - b.count) / max(a.count, b.count, 2)
    return float(np.clip(0.7 * area_term + 0.3 * count_term, 0.0, 1.0))
