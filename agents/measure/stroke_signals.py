"""The rough-pencil stroke measures: overdrawing, graphite texture, hatching, wobble and tapered ends.

Each function works on the arrays measure_strokes() already has (the cropped ink map, its stroke
mask, the pruned one-pixel skeleton and the distance to paper) and returns raw numbers; the
Visual Analyst turns them into 0..1 signals. Every constant is a key of measure.toml [rough].

- overdraw: share of skeleton length with a near-parallel stroke (orientation within
  parallel_deg) across a paper gap, within a few stroke widths along the stroke's normal. The
  width here is the smaller of the mask's median width and the ink-mass width (ink per skeleton
  pixel over the main ink level): the distance transform of a thresholded mask cannot measure a
  line thinner than about 3 px, so for fine lines it over-reaches onto the next strand.
- grain: robust spread of the ink along the skeleton around its local mean (normalised by the
  drawing's ink level); darkness: the skeleton's median ink (1 = black, light graphite ~0.3-0.5);
  solid share: share of the skeleton inside solid ink (the darkest ink in a small square around it
  at least solid_ink): a filled or bold pen stroke, whose mass per length changes with its width,
  not with paper tooth (graphite never fills a whole neighbourhood).
- hatching: share of stroke length in groups of >= hatch_min_group short straight parallel segments
  (the skeleton cut at junctions) lying side by side at a few stroke widths' spacing.
- wobble: band-passed deviation (px) along the skeleton's segments (cut at junctions), smoothed
  above the pixel grid (wobble_fine_sigma) against a longer scale (wobble_coarse_sigma), steady
  curvature removed, path ends left out.
- tapered ends: skeleton ends where the stroke thins (half width at the end well below the median)
  or fades (peak ink well below the main level): a drawn taper, not a loose broken end.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from scipy.ndimage import gaussian_filter1d

MAD_TO_SIGMA = 1.4826  # median absolute deviation -> sigma of a normal distribution


@dataclass
class RoughStats:
    overdrawn_px: int
    grain: float
    darkness: float
    solid_share: float
    hatched_px: int
    hatch_segments: int
    wobble_px: float
    tapered_ends: np.ndarray  # bool per skeleton end, in the order of the ends given


def _normals(ink: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Unit normal (nx, ny) of the strokes per pixel, from the ink's smoothed structure tensor."""
    gx = cv2.Sobel(ink, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(ink, cv2.CV_32F, 0, 1, ksize=3)
    jxx = cv2.GaussianBlur(gx * gx, (0, 0), sigma)
    jyy = cv2.GaussianBlur(gy * gy, (0, 0), sigma)
    jxy = cv2.GaussianBlur(gx * gy, (0, 0), sigma)
    phi = 0.5 * np.arctan2(2.0 * jxy, jxx - jyy)  # the dominant gradient direction: across the stroke
    return np.cos(phi), np.sin(phi)


def overdrawn_pixels(
    ink: np.ndarray, skel: np.ndarray, nx: np.ndarray, ny: np.ndarray, width: float, k: Mapping[str, Any]
) -> int:
    """Skeleton pixels with a second, near-parallel stroke beside them within a few stroke widths.

    Walking out along the stroke's normal, a second stroke is ink at least overdraw_peak x the ink
    at the skeleton that comes after a dip (the ink fell below overdraw_dip x both), with a parallel
    orientation there: a paper gap or, for passes that touch, the valley between them.
    """
    ys, xs = np.nonzero(skel)
    if xs.size == 0:
        return 0
    h, w = ink.shape
    reach = int(math.ceil(min(k["overdraw_max_px"], width * (1.0 + k["overdraw_gap_widths"]))))
    cos_par = math.cos(math.radians(k["parallel_deg"]))
    pnx, pny = nx[ys, xs], ny[ys, xs]
    centre = ink[ys, xs]
    hit = np.zeros(xs.size, bool)
    for sign in (1.0, -1.0):
        low = np.full(xs.size, np.inf, np.float32)
        for t in range(1, reach + 1):
            qx = np.clip(np.rint(xs + sign * t * pnx).astype(np.intp), 0, w - 1)
            qy = np.clip(np.rint(ys + sign * t * pny).astype(np.intp), 0, h - 1)
            v = ink[qy, qx]
            second = (v >= k["overdraw_peak"] * centre) & (low <= k["overdraw_dip"] * np.minimum(v, centre))
            par = np.abs(pnx * nx[qy, qx] + pny * ny[qy, qx]) >= cos_par
            hit |= second & par
            np.minimum(low, v, out=low)
    return int(np.count_nonzero(hit))


def ink_mass_width(ink: np.ndarray, mask: np.ndarray, skel_px: int, main_level: float) -> float:
    """Mean stroke width from ink mass: the ink inside the stroke mask per skeleton pixel, over the
    strokes' main ink level (sub-pixel: a 1 px black line holds 1 px of ink per pixel of length)."""
    if skel_px == 0 or main_level <= 0.0:
        return 0.0
    return float(ink[mask].sum()) / skel_px / main_level


def _box(a: np.ndarray, r: int) -> np.ndarray:
    return cv2.boxFilter(a, -1, (2 * r + 1, 2 * r + 1), normalize=False, borderType=cv2.BORDER_CONSTANT)


def solid_share(ink: np.ndarray, skel: np.ndarray, k: Mapping[str, Any]) -> float:
    """Share of the skeleton whose (2 solid_radius_px + 1)^2 square holds only ink >= solid_ink."""
    if not skel.any():
        return 0.0
    side = 2 * k["solid_radius_px"] + 1
    darkest_low = cv2.erode(ink, np.ones((side, side), np.uint8))
    return float(np.count_nonzero(darkest_low[skel] >= k["solid_ink"])) / float(np.count_nonzero(skel))


def grain_and_darkness(
    ink: np.ndarray, mask: np.ndarray, skel: np.ndarray, k: Mapping[str, Any]
) -> tuple[float, float]:
    """Grain: robust relative spread of the ink mass per stroke length in a small window against a
    larger one, along the skeleton (anti-aliasing moves ink across a thin line, not along it, so a
    clean thin line's mass per length is steady; graphite on paper tooth is not). Darkness: the
    median peak ink along the skeleton."""
    if not skel.any():
        return 0.0, 0.0
    darkness = float(np.median(cv2.dilate(ink, np.ones((3, 3), np.uint8))[skel]))
    inked = ink * mask
    sk = skel.astype(np.float32)
    r0, r1 = k["grain_small_px"], k["grain_large_px"]
    small = _box(inked, r0) / np.maximum(_box(sk, r0), 1.0)
    large = _box(inked, r1) / np.maximum(_box(sk, r1), 1.0)
    ratio = (small / np.maximum(large, 1e-3))[skel]
    return MAD_TO_SIGMA * float(np.median(np.abs(ratio - np.median(ratio)))), darkness


def _segments(skel_u8: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """The skeleton cut at its junctions: (count, labels, stats) of the segments between them."""
    nb = cv2.boxFilter(skel_u8, -1, (3, 3), normalize=False, borderType=cv2.BORDER_CONSTANT)
    junction = (skel_u8 & (nb >= 4)).astype(np.uint8)
    cut = skel_u8 & ~cv2.dilate(junction, np.ones((3, 3), np.uint8)).astype(bool)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(cut.astype(np.uint8), connectivity=8)
    return n, labels, stats


def hatched_pixels(
    n: int, labels: np.ndarray, width: float, side: float, k: Mapping[str, Any]
) -> tuple[int, int]:
    """Stroke length in groups of short straight parallel segments side by side; and their count."""
    ys, xs = np.nonzero(labels)
    if n <= 2 or xs.size == 0:
        return 0, 0
    lab = labels[ys, xs]
    cnt = np.bincount(lab, minlength=n).astype(np.float64)
    c = np.maximum(cnt, 1.0)
    mx, my = np.bincount(lab, xs, n) / c, np.bincount(lab, ys, n) / c
    dx, dy = xs - mx[lab], ys - my[lab]
    sxx, syy, sxy = (np.bincount(lab, v, n) / c for v in (dx * dx, dy * dy, dx * dy))
    tr, det = sxx + syy, sxx * syy - sxy * sxy
    disc = np.sqrt(np.maximum(tr * tr / 4.0 - det, 0.0))
    l1, l2 = tr / 2.0 + disc, np.maximum(tr / 2.0 - disc, 0.0)
    theta = 0.5 * np.arctan2(2.0 * sxy, sxx - syy)
    straight = l2 <= k["hatch_straightness"] ** 2 * np.maximum(l1, 1e-9)
    short = (cnt >= k["hatch_min_len_widths"] * width) & (cnt <= k["hatch_max_len_side"] * side)
    cand = np.nonzero(straight & short)[0]
    cand = cand[cand > 0]
    if cand.size < k["hatch_min_group"]:
        return 0, 0
    ux, uy = np.cos(theta[cand]), np.sin(theta[cand])
    ddx = mx[cand][None, :] - mx[cand][:, None]
    ddy = my[cand][None, :] - my[cand][:, None]
    along = np.abs(ddx * ux[:, None] + ddy * uy[:, None])
    perp = np.abs(ddx * uy[:, None] - ddy * ux[:, None])
    par = np.abs(ux[:, None] * ux[None, :] + uy[:, None] * uy[None, :]) >= math.cos(math.radians(k["parallel_deg"]))
    spacing = max(k["hatch_spacing_min_px"], k["hatch_spacing_widths"] * width)
    half_len = 0.5 * np.maximum(cnt[cand][:, None], cnt[cand][None, :])
    near = par & (perp <= spacing) & (along <= half_len)
    np.fill_diagonal(near, False)
    grouped = near.sum(axis=1) >= k["hatch_min_group"] - 1
    return int(cnt[cand][grouped].sum()), int(grouped.sum())


def _one_way(pts: np.ndarray) -> tuple[np.ndarray, bool]:
    """A 1-px path's contour runs along it and back: the points from one end (a cusp, where the
    contour turns: its two neighbours coincide) to the other. A loop has no cusp: (pts, True)."""
    cusp = np.nonzero((np.roll(pts, 1, axis=0) == np.roll(pts, -1, axis=0)).all(axis=1))[0]
    if cusp.size >= 2:
        return pts[cusp[0]:cusp[1] + 1], False
    return pts, True


def wobble_px(n: int, labels: np.ndarray, k: Mapping[str, Any]) -> float:
    """Length-weighted median band-passed deviation (px) along the skeleton's segments: each path
    smoothed above the pixel grid against a longer scale, its steady curvature removed, its ends
    (where smoothing has one side only) left out."""
    fine, coarse = k["wobble_fine_sigma"], k["wobble_coarse_sigma"]
    trim = int(round(2 * coarse))
    contours, _ = cv2.findContours((labels > 0).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    total, count = 0.0, 0
    min_len = k["wobble_min_len_sigmas"] * coarse
    for cont in contours:
        if len(cont) < min_len:  # the one-way path is never longer than its contour
            continue
        pts, loop = _one_way(cont[:, 0, :].astype(np.float64))
        if len(pts) < min_len:
            continue
        mode = "wrap" if loop else "nearest"
        band = gaussian_filter1d(pts, fine, axis=0, mode=mode) - gaussian_filter1d(pts, coarse, axis=0, mode=mode)
        band -= gaussian_filter1d(band, coarse, axis=0, mode=mode)  # steady curvature is not wobble
        dev = np.hypot(band[:, 0], band[:, 1])
        if not loop:
            dev = dev[trim:-trim]
        total += float(np.median(dev)) * dev.size
        count += dev.size
    return total / count if count else 0.0


def tapered(ends_yx: np.ndarray, half: np.ndarray, peak: np.ndarray, median_half: float, main_level: float,
            k: Mapping[str, Any]) -> np.ndarray:
    """Which skeleton ends are tapers: the stroke thins or fades there (half / peak sampled at the end)."""
    if ends_yx.size == 0:
        return np.zeros(0, bool)
    thin = (median_half >= k["taper_min_half_px"]) & (half <= k["taper_width_ratio"] * median_half)
    fade = peak <= k["taper_ink_ratio"] * main_level
    return np.asarray(thin | fade, bool)


def rough_stats(
    ink: np.ndarray, mask: np.ndarray, skel: np.ndarray, dist: np.ndarray, width: float, median_half: float,
    main_level: float, ends_yx: np.ndarray, side: float, k: Mapping[str, Any],
) -> RoughStats:
    """All rough-stroke measures of one cropped drawing (see the module docstring)."""
    sigma = min(k["tensor_sigma_max_px"], max(k["tensor_sigma_min_px"], k["tensor_sigma_widths"] * width))
    nx, ny = _normals(ink, sigma)
    fine = ink_mass_width(ink, mask, int(np.count_nonzero(skel)), main_level)
    over = overdrawn_pixels(ink, skel, nx, ny, min(width, fine) if fine > 0.0 else width, k)
    grain, darkness = grain_and_darkness(ink, mask, skel, k)
    solid = solid_share(ink, skel, k)
    n, labels, _ = _segments(skel.view(np.uint8))
    hatched, hatch_n = hatched_pixels(n, labels, width, side, k)
    wob = wobble_px(n, labels, k)
    peak_img = cv2.dilate(ink, np.ones((3, 3), np.uint8))
    ey, ex = (ends_yx[:, 0], ends_yx[:, 1]) if ends_yx.size else (np.zeros(0, np.intp), np.zeros(0, np.intp))
    tap = tapered(ends_yx, dist[ey, ex], peak_img[ey, ex], median_half, main_level, k)
    return RoughStats(overdrawn_px=over, grain=grain, darkness=darkness, solid_share=solid, hatched_px=hatched,
                      hatch_segments=hatch_n, wobble_px=wob, tapered_ends=tap)
