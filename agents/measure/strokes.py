"""Stroke and ink measurements on one drawing (the Visual Analyst's pixel work).

The drawing is brought to a fixed working size (longest side WORK_SIDE) so every length below is
in the same units whatever the input resolution, then turned into an ink map (0 = paper,
1 = full ink) that is independent of stroke colour, stroke polarity and paper shading. Every
measure is derived from that map, its stroke mask and the mask's one-pixel skeleton.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from skimage.morphology import skeletonize

from .imaging import ImageInputError
from .measure_data import measure_data
from .stroke_signals import rough_stats

# Every number below comes from measure.toml ([working_size], [ink], [strokes]).
WORK_SIDE: int = measure_data()["working_size"]["analysis_side"]  # lengths below are at this side
MAD_TO_SIGMA = 1.4826  # median absolute deviation -> sigma of a normal distribution (a fact, not a tunable)

@dataclass
class InkMap:
    ink: np.ndarray  # (H, W) float32 0..1 at working size
    inverted: bool  # light strokes on dark paper were detected and flipped
    paper_level: float  # median paper brightness before flat-fielding
    noise_sigma: float  # robust spread of the flat-fielded paper
    threshold: float  # ink level that separates strokes from paper
    scale: float  # working size / input size


@dataclass
class StrokeStats:
    """Raw stroke measurements at working size (lengths in working pixels)."""

    height: int
    width: int
    ink_share: float
    skeleton_px: int
    faint_skeleton_px: int
    endpoints: int
    junctions: int
    gap_pairs: int
    short_fragments: int
    specks: int
    median_width: float
    width_p10: float
    width_p90: float
    object_boxes: list[tuple[int, int, int, int]]  # x, y, w, h of each object, largest mass first
    object_masses: list[int]
    gap_radius: float
    group_radius: float
    outline_px: float
    tapered_ends: int = 0  # ends where the stroke thins or fades (not counted as loose or gapped)
    overdrawn_px: int = 0  # skeleton px with a near-parallel stroke close beside them
    grain: float = 0.0  # relative ink spread along the strokes
    darkness: float = 0.0  # median ink along the strokes (1 = black)
    solid_share: float = 0.0  # share of the skeleton inside solid ink (filled / bold pen strokes)
    hatched_px: int = 0  # skeleton px in hatching groups
    hatch_segments: int = 0
    wobble_px: float = 0.0  # band-passed deviation of the skeleton paths

    @property
    def empty(self) -> bool:
        st = measure_data()["strokes"]
        return bool(self.ink_share < st["empty_ink_share"] or self.skeleton_px < st["empty_skeleton_px"])


def to_working_size(rgb: np.ndarray, name: str) -> tuple[np.ndarray, float]:
    """Resize so the longest side is WORK_SIDE: area filter down, linear up."""
    h, w = rgb.shape[:2]
    min_short = measure_data()["working_size"]["min_short_side"]
    s = WORK_SIDE / float(max(h, w))
    size = (max(1, round(w * s)), max(1, round(h * s)))
    if min(size) < min_short:
        raise ImageInputError(
            f"{name}: {w}x{h} is too elongated to analyse (short side would be {min(size)} px "
            f"at the {WORK_SIDE} px working size; need at least {min_short})"
        )
    if s == 1.0:
        return rgb, 1.0
    interp = cv2.INTER_AREA if s < 1.0 else cv2.INTER_LINEAR
    return cv2.resize(rgb, size, interpolation=interp), s


def _paper_background(dark: np.ndarray) -> np.ndarray:
    """Paper brightness per pixel: strokes closed away at quarter size, then smoothed."""
    h, w = dark.shape
    k = measure_data()["ink"]
    shrink, close = k["paper_shrink"], k["paper_close_px"]
    small = cv2.resize(dark, (max(shrink, w // shrink), max(shrink, h // shrink)), interpolation=cv2.INTER_AREA)
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (close, close))  # wider than marker strokes
    closed = cv2.morphologyEx(small, cv2.MORPH_CLOSE, kernel, borderType=cv2.BORDER_REPLICATE)
    closed = cv2.GaussianBlur(closed, (0, 0), k["paper_blur_sigma"])
    return cv2.resize(closed, (w, h), interpolation=cv2.INTER_LINEAR)


def _median_below_half(a: np.ndarray) -> bool:
    """np.median(a) < 0.5 for a float array without NaN, mostly from one count instead of a sort."""
    n, below = a.size, int(np.count_nonzero(a < 0.5))
    # np.median is the middle value (odd n) or the float mean of the two middle values (even n):
    # when they all lie on one side of 0.5 so does the median; only a split pair needs the sort.
    if below > n // 2:
        return True
    if below < n // 2 or n % 2:
        return False
    return bool(np.median(a) < 0.5)


def ink_map(rgb: np.ndarray, name: str) -> InkMap:
    """Flat-fielded ink darkness of a (H, W, 3) float RGB drawing, at working size."""
    work, scale = to_working_size(rgb, name)
    luma = cv2.cvtColor(work, cv2.COLOR_RGB2GRAY)
    inverted = _median_below_half(luma)  # paper is the majority of the canvas
    # The darkest channel makes coloured strokes (yellow, red...) count as fully inked. Plane by
    # plane: numpy's min over a length-3 last axis is ~30x slower. 1 - x never increases with x,
    # so min(1 - c) == 1 - max(c) bit for bit: inverted drawings flip one plane, not three.
    r, g, b = cv2.split(work)
    dark = 1.0 - cv2.max(cv2.max(r, g), b) if inverted else cv2.min(cv2.min(r, g), b)
    bg = _paper_background(dark)
    paper = float(np.median(bg))
    # Large solid fills would be closed into "paper"; real paper shading stays above 60 % of the
    # sheet's level, so the floor keeps fills as ink while still removing scan vignetting.
    k = measure_data()["ink"]
    bg = np.maximum(bg, max(paper * k["fill_floor"], 1e-3))
    # clip((bg - dark) / bg, 0, 1) in place: the same float32 operations, one array instead of four.
    ink = bg - dark
    np.divide(ink, bg, out=ink)
    np.clip(ink, 0.0, 1.0, out=ink)
    ink = ink.astype(np.float32, copy=False)
    if 2 * (ink.size - cv2.countNonZero(ink)) > ink.size:
        # Mostly bare paper (clean line art): both middle values are 0, so the median and the
        # median absolute deviation are 0, as np.median would find after two full sorts.
        med = sigma = 0.0
    else:
        med = float(np.median(ink))
        sigma = float(MAD_TO_SIGMA * np.median(np.abs(ink - med)))
    threshold = max(k["ink_floor"], med + k["noise_sigmas"] * sigma)
    return InkMap(ink=ink, inverted=inverted, paper_level=paper, noise_sigma=sigma, threshold=threshold, scale=scale)


def _box_sum(px: np.ndarray) -> np.ndarray:
    """3x3 sum around each pixel of a 0/1 uint8 image, the pixel included (paper beyond the edge).

    For a set pixel it is its neighbour count + 1; integer sums on uint8 instead of a float filter.
    """
    return cv2.boxFilter(px, -1, (3, 3), normalize=False, borderType=cv2.BORDER_CONSTANT)


def _points(px: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(xs, ys) of the set pixels of a uint8 image in raster order, as np.nonzero gives them (~3x faster)."""
    pts = cv2.findNonZero(px)
    if pts is None:
        empty = np.zeros(0, np.int32)
        return empty, empty
    pts = pts.reshape(-1, 2)
    return pts[:, 0], pts[:, 1]


def _prune_spurs(skel: np.ndarray, length: int) -> np.ndarray:
    """Remove side branches shorter than `length` px that thick or wobbly strokes grow.

    Classic pruning (erode endpoints, regrow from the survivors along the old skeleton), plus
    isolated short strokes are restored: they are real marks, only branches are noise.
    """
    if length <= 0:
        return skel
    sk = skel.view(np.uint8)
    cur = sk.copy()
    for _ in range(length):
        cur &= _box_sum(cur) > 2  # drop ends and lone pixels: at most one neighbour
    grown = cur & (_box_sum(cur) == 2)  # the surviving ends: exactly one neighbour
    kernel = np.ones((3, 3), np.uint8)
    for _ in range(length):
        grown = cv2.bitwise_and(cv2.dilate(grown, kernel), sk)
    pruned = (cur | grown).view(bool)
    n, labels = cv2.connectedComponents(sk, connectivity=8)
    if n > 1:
        kept = np.bincount(labels[pruned], minlength=n) > 0
        lost = ~kept
        lost[0] = False
        if lost.any():
            pruned |= lost[labels]
    return pruned


def _gap_pairs(
    ends: np.ndarray, comp: np.ndarray, comp_len: np.ndarray, radius: float, same_radii: float
) -> int:
    """Endpoint pairs that face each other across a short gap (mutual nearest, closer than radius).

    Ends of different strokes always count; two ends of one stroke count only when that stroke
    is long (a cut closed contour), not when it is a small V or hook.
    """
    n = len(ends)
    if n < 2:
        return 0
    d = np.sqrt(((ends[:, None, :] - ends[None, :, :]) ** 2).sum(-1))
    np.fill_diagonal(d, np.inf)
    same = comp[:, None] == comp[None, :]
    short_same = same & (comp_len[comp][:, None] < same_radii * radius)
    d[short_same] = np.inf
    nearest = d.argmin(axis=1)
    pairs = 0
    for i in range(n):
        j = nearest[i]
        if i < j and nearest[j] == i and d[i, j] < radius:
            pairs += 1
    return pairs


def _objects(
    mask: np.ndarray, xs: np.ndarray, ys: np.ndarray, radius: float, min_share: float
) -> tuple[list[tuple[int, int, int, int]], list[int]]:
    """Group strokes closer than ~2 radius into objects; drop groups under min_share of the largest.

    xs, ys are the coordinates of the mask's pixels.
    """
    h, w = mask.shape
    sw, sh = max(1, w // 2), max(1, h // 2)
    small = cv2.resize(mask.astype(np.uint8, copy=False), (sw, sh), interpolation=cv2.INTER_AREA)
    small = (small > 0).astype(np.uint8)
    r = max(1, round(radius / 2))
    grown = cv2.dilate(small, cv2.getStructuringElement(cv2.MORPH_RECT, (2 * r + 1, 2 * r + 1)))
    n, labels = cv2.connectedComponents(grown, connectivity=8)
    if n <= 1:
        return [], []
    # The labels back at full size (nearest), read only at the ink pixels: masses and boxes come
    # from them. An exact 2x upscale maps (x, y) to (x // 2, y // 2): no full-size label image.
    if w == 2 * sw and h == 2 * sh:
        lab = labels[ys >> 1, xs >> 1]
    else:
        lab = cv2.resize(labels, (w, h), interpolation=cv2.INTER_NEAREST)[ys, xs]
    masses = np.bincount(lab, minlength=n)
    masses[0] = 0
    order = [int(i) for i in np.argsort(-masses) if masses[i] > 0]
    if not order:
        return [], []
    top = masses[order[0]]
    boxes: list[tuple[int, int, int, int]] = []
    kept: list[int] = []
    for i in order:
        if masses[i] < min_share * top:
            break
        sel = lab == i
        ox, oy = xs[sel], ys[sel]
        x0, y0 = int(ox.min()), int(oy.min())
        boxes.append((x0, y0, int(ox.max()) - x0 + 1, int(oy.max()) - y0 + 1))
        kept.append(int(masses[i]))
    return boxes, kept


def _taper_zone(skel: np.ndarray, ys: np.ndarray, xs: np.ndarray, radius: float) -> np.ndarray:
    """Per skeleton pixel (in skel[skel] order): within `radius` of one of the given (tapered) ends."""
    zone = np.zeros(skel.shape, np.uint8)
    r = max(1, round(radius))
    for y, x in zip(ys.tolist(), xs.tolist(), strict=True):
        cv2.circle(zone, (x, y), r, 1, -1)
    return zone.view(bool)[skel]


def median_half_main(half: np.ndarray, faint: np.ndarray) -> float:
    """Median distance to paper along the main (non-faint) skeleton; 1 px without one."""
    main = half[~faint]
    return float(np.median(main)) if main.size else 1.0


def _stroke_mask(ink: InkMap, min_speck_area: float) -> tuple[np.ndarray, tuple[slice, slice], int]:
    """(the canvas-size stroke mask without specks, the box of the ink plus a one-pixel margin, specks).

    Everything measure_strokes does but the distance transform and the objects works on that box
    (clipped at the canvas edge, which every call already treats as paper): components, thinning,
    pruning, 3x3 sums and contours never look past the margin, so the crop gives the same pixels in
    the same raster order at a fraction of the cost."""
    smooth = cv2.GaussianBlur(ink.ink, (3, 3), 0)
    full_mask = np.greater(smooth, ink.threshold).view(np.uint8)
    bx, by, bw, bh = cv2.boundingRect(full_mask)
    x0, y0 = max(0, bx - 1), max(0, by - 1)
    box = (slice(y0, by + bh + 1), slice(x0, bx + bw + 1))
    raw_mask = full_mask[box]
    # Grana's labelling gives the same components and areas as the default, with stats ~3x faster.
    n, labels, cc_stats, _ = cv2.connectedComponentsWithStatsWithAlgorithm(
        raw_mask, 8, cv2.CV_32S, cv2.CCL_GRANA
    )
    speck = cc_stats[:, cv2.CC_STAT_AREA] < min_speck_area
    speck[0] = False
    specks = int(speck.sum())
    mask = raw_mask.astype(bool)
    if specks:
        mask &= ~speck[labels]
    full_mask[box] = mask.view(np.uint8)
    return full_mask, box, specks


def _width_percentiles(half: np.ndarray) -> tuple[float, float, float]:
    """(median, p10, p90) stroke width from skeleton half-widths (0 for no strokes)."""
    widths = np.maximum(2.0 * half - 1.0, 1.0)
    if not widths.size:
        return 0.0, 0.0, 0.0
    median_w, p10, p90 = (float(v) for v in np.percentile(widths, [50, 10, 90]))
    return median_w, p10, p90


def _ends_and_junctions(sk: np.ndarray) -> tuple[np.ndarray, int]:
    """The skeleton's end pixels (one neighbour) and its number of junctions (3+ neighbours, grouped)."""
    nb = _box_sum(sk)  # neighbours + 1 on the skeleton
    junction_mask: np.ndarray = sk & (nb >= 4)  # uint8: the skeleton's own dtype
    return sk & (nb == 2), max(0, cv2.connectedComponents(junction_mask, connectivity=8)[0] - 1)


def measure_strokes(ink: InkMap) -> StrokeStats:
    """Stroke statistics of an ink map: skeleton length, faint share, ends, gaps, widths, objects."""
    h, w = ink.ink.shape
    st = measure_data()["strokes"]
    full_mask, box, specks = _stroke_mask(ink, st["min_speck_area"])
    x0, y0 = box[1].start, box[0].start
    mask_u8 = np.ascontiguousarray(full_mask[box])  # its own array, as OpenCV and skimage get it below
    mask = mask_u8.view(bool)
    ink_share = cv2.countNonZero(mask_u8) / (h * w)  # == mask.mean(): an exact count over the canvas

    skel = skeletonize(mask)
    # Full size: on a crop the transform's float sums can differ in the last bit.
    dist = cv2.distanceTransform(full_mask, cv2.DIST_L2, 3)[box]
    median_half = float(np.median(dist[skel])) if skel.any() else 1.0
    skel = _prune_spurs(skel, max(st["min_spur_px"], round(st["spur_gain"] * median_half)))
    skel_px = int(np.count_nonzero(skel))
    half = dist[skel]

    # Faint = construction-like: the stroke's local peak ink is well below the drawing's main ink.
    peak = cv2.dilate(ink.ink[box], np.ones((3, 3), np.uint8))[skel]
    main_level = float(np.percentile(peak, st["main_ink_percentile"])) if peak.size else 0.0
    faint = peak < st["faint_ratio"] * main_level
    faint_px = int(faint.sum())

    # Width statistics of the main (non-faint) strokes: construction lines are measured apart.
    median_w, p10, p90 = _width_percentiles(half[~faint])
    # Edge roughness: outline length against the two sides of a smooth stroke of that length.
    contours, _ = cv2.findContours(mask_u8, cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    outline = sum(cv2.arcLength(c, True) for c in contours)

    sk = skel.view(np.uint8)
    end_mask, junctions = _ends_and_junctions(sk)

    n_sk, sk_labels = cv2.connectedComponents(sk, connectivity=8)
    comp_len = np.bincount(sk_labels[skel], minlength=n_sk).astype(np.float64)  # background stays 0
    side = float(max(h, w))
    gap_radius = float(np.clip(st["gap_radius_widths"] * median_w, st["gap_radius_min_px"],
                               st["gap_radius_max_side"] * side))
    xs, ys = _points(end_mask)
    rough = rough_stats(ink.ink[box], mask, skel, dist, median_w, median_half_main(half, faint),
                        main_level, np.stack([ys, xs], axis=1), side, measure_data()["rough"])
    loose = ~rough.tapered_ends
    # A taper's thin, fading last stretch is how the stroke was drawn: neither faint construction
    # nor uneven width.
    drawn = ~_taper_zone(skel, ys[~loose], xs[~loose], max(st["taper_zone_min_px"], st["taper_zone_widths"] * median_w))
    faint_px = int((faint & drawn).sum())
    kept = np.maximum(2.0 * half[~faint & drawn] - 1.0, 1.0)
    if kept.size:
        p10, p90 = (float(v) for v in np.percentile(kept, [10, 90]))
    ends = np.stack([xs + x0, ys + y0], axis=1).astype(np.float64)
    gaps = _gap_pairs(ends[loose], sk_labels[ys, xs][loose], comp_len, gap_radius, st["same_stroke_radii"])
    short_fragments = int(((comp_len > 0) & (comp_len < st["short_fragment_side"] * side)).sum())

    group_radius = max(st["group_radius_side"] * side, gap_radius)
    xs, ys = _points(mask_u8)
    boxes, masses = _objects(full_mask, xs + x0, ys + y0, group_radius, st["object_min_share"])
    return StrokeStats(
        height=h, width=w, ink_share=ink_share, skeleton_px=skel_px, faint_skeleton_px=faint_px,
        endpoints=len(ends), junctions=int(junctions), gap_pairs=gaps,
        short_fragments=short_fragments, specks=specks, median_width=median_w, width_p10=p10,
        width_p90=p90, object_boxes=boxes, object_masses=masses, gap_radius=gap_radius,
        group_radius=group_radius, outline_px=float(outline), tapered_ends=int(rough.tapered_ends.sum()),
        overdrawn_px=rough.overdrawn_px, grain=rough.grain, darkness=rough.darkness,
        solid_share=rough.solid_share, hatched_px=rough.hatched_px,
        hatch_segments=rough.hatch_segments, wobble_px=rough.wobble_px,
    )
