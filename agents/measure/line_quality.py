"""Line Quality Analyzer (seed 004 sections 1 step 7, 3E): artefact scores of a generated line-art image.

All scores are 0..1, higher = worse, measured at WORK_SIDE (longer side) so resolution does not
move them. Ink = luma darker than the paper (the 90th luma percentile) by more than INK_CONTRAST.
w = the median stroke width (2 d - 1 for the distance-to-paper d along the ink skeleton), >= 1 px.

- broken: gaps in strokes. Skeleton endpoints of stroke components (not dots) are paired with the
  nearest other endpoint within GAP_RADIUS = max(8, 6 w) px when the two are NOT joined by
  skeleton inside the window around them (so spurs and line ends of one stroke do not count).
  rate = gaps per 1000 px of skeleton; broken = 1 - exp(-rate / BROKEN_RATE).
- dotted: strokes drawn as chains of dots or dashes. A dot is an ink component no longer than
  max(6, 4 w) px whose nearest other dot lies within max(6, 3 w) px (edge to edge, roughly).
  dotted = min(1, share / DOTTED_SHARE), share = dot length / all stroke length (length of a
  component = its skeleton pixels, at least its extent).
- fringe: colour along edges of art that should be monochrome. Chroma = max(RGB) - min(RGB) on the
  edge band (ink dilated by 2 px minus ink eroded by 1 px); paper chroma = median chroma farther
  than 2 px from ink; fringe = min(1, max(0, mean band chroma - paper chroma) / FRINGE_CHROMA).
- jitter: high-frequency wobble of contours. Every ink contour of at least 40 points is smoothed
  along its arc at sigma 1 and sigma JITTER_SIGMA; the median distance between the two versions
  (median: stroke caps and corners are not wobble), averaged over contours by length, is the
  wobble in px (a straight or gently curved contour gives ~0.1 px). jitter = clip((wobble -
  JITTER_FLOOR) / JITTER_SPAN, 0, 1).
- stray: isolated small marks. A component no longer than max(6, 4 w) px (or smaller than 0.5 w^2)
  that is not a dot and has no other ink within GAP_RADIUS. stray = 1 - exp(-count / STRAY_COUNT).

Limits: coloured line art (intentionally coloured strokes) reads as fringing; hatching made of
short parallel strokes can read as dotted; screentone reads as stray marks and dots.

The upper-case names above are keys of measure.toml's [line_art] section (lower case there), the
working side is [working_size] line_quality_side; the pass/fail thresholds are the policy's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import cv2
import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.spatial import cKDTree
from skimage.morphology import skeletonize

from .imaging import fit_within, to_gray, to_rgb_float
from .measure_data import measure_data

WORK_SIDE: int = measure_data()["working_size"]["line_quality_side"]
EDGE_BAND_OUT_PX, EDGE_BAND_IN_PX = 5, 3  # the fringe band: ink dilated 2 px, minus ink eroded 1 px
METRICS = ("broken", "dotted", "fringe", "jitter", "stray")
RETRY_KEYS = ("retry_cfg2_step", "retry_ip2_step", "retry_denoise2_step")


@dataclass
class LineQualityScores:
    """Artefact scores 0..1 (higher = worse); empty means no ink was found at all."""

    broken: float
    dotted: float
    fringe: float
    jitter: float
    stray: float
    empty: bool = False
    measurements: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class LineQualityVerdict:
    """passed, the failed metric names, and the decreases a safer retry applies (empty when passed)."""

    passed: bool
    failures: list[str]
    retry: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _ink_mask(gray: np.ndarray) -> tuple[np.ndarray, float]:
    k = measure_data()["line_art"]
    paper = float(np.percentile(gray, k["paper_percentile"]))
    return gray < paper - k["ink_contrast"], paper


def _stroke_width(ink: np.ndarray, skeleton: np.ndarray) -> float:
    dist = cv2.distanceTransform(ink.astype(np.uint8), cv2.DIST_L2, 3)
    vals = dist[skeleton]
    # A centre pixel of an n px line lies (n + 1) / 2 from paper in the distance transform.
    return max(1.0, float(2.0 * np.median(vals) - 1.0)) if vals.size else 1.0


def _endpoints(skeleton: np.ndarray) -> np.ndarray:
    sk = skeleton.astype(np.uint8)
    neighbours = cv2.filter2D(sk, -1, np.ones((3, 3), np.float32), borderType=cv2.BORDER_CONSTANT) - sk
    ys, xs = np.nonzero((sk == 1) & (neighbours == 1))
    return np.stack([ys, xs], axis=1) if ys.size else np.zeros((0, 2), np.int64)


def _joined_locally(skeleton: np.ndarray, p: np.ndarray, q: np.ndarray, pad: int) -> bool:
    y0, x0 = max(0, min(p[0], q[0]) - pad), max(0, min(p[1], q[1]) - pad)
    y1, x1 = max(p[0], q[0]) + pad + 1, max(p[1], q[1]) + pad + 1
    window = skeleton[y0:y1, x0:x1].astype(np.uint8)
    _, labels = cv2.connectedComponents(window, connectivity=8)
    return labels[p[0] - y0, p[1] - x0] == labels[q[0] - y0, q[1] - x0]


def _count_gaps(skeleton: np.ndarray, ends: np.ndarray, radius: float) -> int:
    if len(ends) < 2:
        return 0
    tree = cKDTree(ends)
    used = np.zeros(len(ends), bool)
    gaps = 0
    pairs = sorted(tree.query_pairs(radius), key=lambda ij: float(np.sum((ends[ij[0]] - ends[ij[1]]) ** 2)))
    for i, j in pairs:
        if used[i] or used[j]:
            continue
        if _joined_locally(skeleton, ends[i], ends[j], int(radius)):
            continue
        used[i] = used[j] = True
        gaps += 1
    return gaps


def _wobble(ink: np.ndarray) -> float:
    contours, _ = cv2.findContours(ink.astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    k = measure_data()["line_art"]
    total, count = 0.0, 0
    for c in contours:
        if len(c) < k["jitter_min_points"]:
            continue
        pts = c[:, 0, :].astype(np.float64)
        fine = gaussian_filter1d(pts, k["jitter_fine_sigma"], axis=0, mode="wrap")
        coarse = gaussian_filter1d(pts, k["jitter_sigma"], axis=0, mode="wrap")
        # The median ignores the few high-curvature points (stroke caps, corners) wobble is not about.
        total += float(np.median(np.linalg.norm(fine - coarse, axis=1))) * len(pts)
        count += len(pts)
    return total / count if count else 0.0


def _dots_and_strays(small: np.ndarray, large: np.ndarray, labels: np.ndarray, centroids: np.ndarray,
                     extent: np.ndarray, dot_r: float, gap_r: float) -> tuple[list[int], int]:
    """The small marks that sit in dotted runs (a near other small mark) and the isolated ones (strays):
    distance from each small mark to the nearest other small mark, and to any other ink."""
    dots: list[int] = []
    strays = 0
    if not small.size:
        return dots, strays
    pts = centroids[small]
    if small.size > 1:
        d_small, _ = cKDTree(pts).query(pts, k=2)
        nearest_small = d_small[:, 1]
    else:
        nearest_small = np.full(1, np.inf)
    big_ink = np.isin(labels, large)
    dist_big = cv2.distanceTransform((~big_ink).astype(np.uint8), cv2.DIST_L2, 3) if large.size else None
    for k, lab in enumerate(small):
        cy, cx = int(round(centroids[lab][1])), int(round(centroids[lab][0]))
        to_big = float(dist_big[cy, cx]) if dist_big is not None else np.inf
        # Centroid distances include the marks' own radii: allow for them.
        reach = nearest_small[k] - extent[lab]
        if reach <= dot_r:
            dots.append(int(lab))
        elif min(reach, to_big - extent[lab] / 2) > gap_r:
            strays += 1
    return dots, strays


def _edge_chroma(rgb: np.ndarray, ink: np.ndarray) -> tuple[float, float]:
    """(mean chroma in the band around the strokes, median chroma of the paper away from them)."""
    ink_u8 = ink.astype(np.uint8)
    near = cv2.dilate(ink_u8, np.ones((EDGE_BAND_OUT_PX, EDGE_BAND_OUT_PX), np.uint8)) > 0
    band = near & ~(cv2.erode(ink_u8, np.ones((EDGE_BAND_IN_PX, EDGE_BAND_IN_PX), np.uint8)) > 0)
    chroma = rgb.max(axis=2) - rgb.min(axis=2)
    paper_px = ~near
    paper_chroma = float(np.median(chroma[paper_px])) if paper_px.any() else 0.0
    band_chroma = float(chroma[band].mean()) if band.any() else 0.0
    return band_chroma, paper_chroma


def score_line_art(image: np.ndarray) -> LineQualityScores:
    """Score one generated line-art image ((H, W, C) RGB, uint8 or float 0..1)."""
    rgb, _ = fit_within(to_rgb_float(image, "image"), WORK_SIDE)
    gray = to_gray(rgb)
    ink, paper = _ink_mask(gray)
    if not ink.any():
        return LineQualityScores(0.0, 0.0, 0.0, 0.0, 0.0, empty=True, measurements={"ink_share": 0.0})

    la = measure_data()["line_art"]
    skeleton = skeletonize(ink)
    w = _stroke_width(ink, skeleton)
    small_len = max(la["small_len_min_px"], la["small_len_widths"] * w)
    gap_r = max(la["gap_radius_min_px"], la["gap_radius_widths"] * w)
    dot_r = max(la["dot_radius_min_px"], la["dot_radius_widths"] * w)

    n, labels, stats, centroids = cv2.connectedComponentsWithStats(ink.astype(np.uint8), connectivity=8)
    sk_len = np.bincount(labels[skeleton], minlength=n).astype(np.float64)
    extent = np.maximum(stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT]).astype(np.float64)
    length = np.maximum(sk_len, extent)
    comp = np.arange(1, n)
    small = comp[(extent[comp] <= small_len) | (stats[comp, cv2.CC_STAT_AREA] < la["small_area_widths2"] * w * w)]
    large = np.setdiff1d(comp, small)

    dots, strays = _dots_and_strays(small, large, labels, centroids, extent, dot_r, gap_r)

    stroke_len = float(length[large].sum() + length[small].sum())
    dot_len = float(length[dots].sum()) if dots else 0.0
    dotted = min(1.0, (dot_len / stroke_len) / la["dotted_share"]) if stroke_len > 0 else 0.0

    big_skeleton = skeleton & np.isin(labels, large)
    ends = _endpoints(big_skeleton)
    gaps = _count_gaps(big_skeleton, ends, gap_r)
    big_len = float(np.count_nonzero(big_skeleton))
    rate = 1000.0 * gaps / big_len if big_len > 0 else 0.0
    broken = 1.0 - float(np.exp(-rate / la["broken_rate"]))

    band_chroma, paper_chroma = _edge_chroma(rgb, ink)
    fringe = float(np.clip((band_chroma - paper_chroma) / la["fringe_chroma"], 0.0, 1.0))

    wobble = _wobble(ink)
    jitter = float(np.clip((wobble - la["jitter_floor"]) / la["jitter_span"], 0.0, 1.0))
    stray = 1.0 - float(np.exp(-strays / la["stray_count"]))

    return LineQualityScores(
        broken=broken, dotted=dotted, fringe=fringe, jitter=jitter, stray=stray,
        measurements={
            "ink_share": float(ink.mean()), "paper_luma": paper, "stroke_width_px": w,
            "gaps": float(gaps), "gaps_per_1000px": rate, "dot_marks": float(len(dots)),
            "dotted_share": dot_len / stroke_len if stroke_len else 0.0, "stray_marks": float(strays),
            "edge_chroma": band_chroma, "paper_chroma": paper_chroma, "wobble_px": wobble,
        },
    )


def judge(scores: LineQualityScores, thresholds: Mapping[str, float]) -> LineQualityVerdict:
    """Pass/fail against the policy's max_<metric> thresholds; a failure asks for the retry steps.

    An image with no ink fails as "empty". The retry applies all three of the policy's decreases:
    each failing artefact here is the kind KS2 (cfg2, ip2, denoise2) causes or fails to clean.
    """
    needed = [f"max_{m}" for m in METRICS] + list(RETRY_KEYS)
    missing = [k for k in needed if k not in thresholds]
    if missing:
        raise ValueError(f"thresholds: missing {', '.join(missing)}")
    for k in needed:
        v = thresholds[k]
        if not isinstance(v, (int, float)) or not np.isfinite(v) or v < 0:
            raise ValueError(f"thresholds: {k} must be a finite number >= 0, got {v!r}")
    failures = ["empty"] if scores.empty else []
    failures += [m for m in METRICS if getattr(scores, m) > thresholds[f"max_{m}"]]
    if not failures:
        return LineQualityVerdict(True, [], {})
    return LineQualityVerdict(False, failures, retry_steps(thresholds))


def retry_steps(thresholds: Mapping[str, Any]) -> dict[str, float]:
    """The policy's retry decreases as safer_retry's keywords (cfg2_step, ip2_step, denoise2_step)."""
    return {k.removeprefix("retry_"): float(thresholds[k]) for k in RETRY_KEYS}
