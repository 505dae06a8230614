"""In-between frames of one gap between two keys, mode by mode.

- hold: the earlier key, repeated.
- dissolve: (1 - t) key0 + t key1 (grey ghosts by construction: a baseline).
- flow: dense flow both ways (DIS or Farneback) between the keys' ink distance fields (or, for the
  benchmark's baselines, their plain luma), each key warped to time t, blended by time.
- line_aware: the same flows; each key's ink distance field warped to t; per pixel the source whose
  forward/backward residual (plus a small penalty for being the farther key) is lower (each source's
  region grown a few px, so a line crossing a seam stays joined); the composite re-binarised at a line
  threshold and thinned to one centre line drawn at the key's stroke width, in the keys' ink colour
  on their paper: no doubled lines, no grey.
- line_aware_tone: the same per-pixel choice, but of the warped keys' own pixels (no blending, so no
  doubled grey ghosts; pencil tones, fills and anti-aliasing are kept, nothing is re-binarised).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from .config import InbetweenConfig
from .flow import compute_flow, dark_centroid_shift, field_u8, time_flows, warp
from .ink import KeyInk, luma, render, thin_to_width

MODES = ("hold", "dissolve", "flow", "line_aware", "line_aware_tone", "external")
FIELDS = ("distance", "image")


@dataclass(frozen=True)
class GapKeys:
    """The two keys around a gap, their ink, and the flows between them (computed once per gap)."""

    rgb0: np.ndarray
    rgb1: np.ndarray
    ink0: KeyInk
    ink1: KeyInk


@dataclass(frozen=True)
class GapFlows:
    f01: np.ndarray
    f10: np.ndarray
    residual0: np.ndarray  # in key 0's frame: |D0(x) - D1(x + f01(x))|, smoothed
    residual1: np.ndarray


def _blur(img: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(img, (0, 0), sigma) if sigma > 0 else img


def gap_flows(keys: GapKeys, method: str, field: str, flow_cfg: Mapping[str, Any], cap: float) -> GapFlows:
    if field == "distance":
        a, b = field_u8(keys.ink0.distance, cap), field_u8(keys.ink1.distance, cap)
    elif field == "image":
        a, b = field_u8(luma(keys.rgb0), 1.0), field_u8(luma(keys.rgb1), 1.0)
    else:
        raise ValueError(f"field: {field!r} is not one of {', '.join(FIELDS)}")
    shift = dark_centroid_shift(a, b) if field == "distance" else (0.0, 0.0)
    f01 = compute_flow(a, b, method, flow_cfg, shift)
    f10 = compute_flow(b, a, method, flow_cfg, (-shift[0], -shift[1]))
    sigma = float(flow_cfg["residual_blur"])
    d0, d1 = keys.ink0.distance, keys.ink1.distance
    r0 = _blur(np.abs(d0 - warp(d1, f01, cap)), sigma)
    r1 = _blur(np.abs(d1 - warp(d0, f10, cap)), sigma)
    return GapFlows(f01, f10, r0, r1)


def flow_frame(keys: GapKeys, flows: GapFlows, t: float) -> np.ndarray:
    ft0, ft1 = time_flows(flows.f01, flows.f10, t)
    w0 = warp(keys.rgb0, ft0, (1.0, 1.0, 1.0))
    w1 = warp(keys.rgb1, ft1, (1.0, 1.0, 1.0))
    return np.clip((1.0 - t) * w0 + t * w1, 0.0, 1.0).astype(np.float32)


def _choose_key0(flows: GapFlows, ft0: np.ndarray, ft1: np.ndarray, t: float, cfg: InbetweenConfig) -> np.ndarray:
    """Per pixel: True where key 0's warp has the lower residual (plus the farther-key penalty)."""
    cap = float(cfg.ink["dt_cap"])
    bias = float(cfg.flow["near_key_bias"])
    s0 = warp(flows.residual0, ft0, cap) + bias * t
    s1 = warp(flows.residual1, ft1, cap) + bias * (1.0 - t)
    return np.asarray(s0 <= s1)


def line_aware_tone_frame(keys: GapKeys, flows: GapFlows, t: float, cfg: InbetweenConfig) -> np.ndarray:
    ft0, ft1 = time_flows(flows.f01, flows.f10, t)
    pick0 = _choose_key0(flows, ft0, ft1, t, cfg)
    w0 = warp(keys.rgb0, ft0, (1.0, 1.0, 1.0))
    w1 = warp(keys.rgb1, ft1, (1.0, 1.0, 1.0))
    return np.where(pick0[..., None], w0, w1).astype(np.float32)


def line_aware_frame(keys: GapKeys, flows: GapFlows, t: float, cfg: InbetweenConfig) -> np.ndarray:
    cap = float(cfg.ink["dt_cap"])
    ft0, ft1 = time_flows(flows.f01, flows.f10, t)
    d0 = warp(keys.ink0.distance, ft0, cap)
    d1 = warp(keys.ink1.distance, ft1, cap)
    pick0 = _choose_key0(flows, ft0, ft1, t, cfg).astype(np.uint8)
    thr = float(cfg.line["centre_threshold"])
    r = int(cfg.line["seam_overlap"])
    grow = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    # Each source draws its lines inside its chosen region grown by r px: where the choice flips along
    # a line, both ends overlap and the thinning below joins them instead of leaving a gap.
    from0 = cv2.dilate(pick0, grow) > 0 if r else pick0 > 0
    from1 = cv2.dilate(1 - pick0, grow) > 0 if r else pick0 == 0
    band = ((d0 < thr) & from0) | ((d1 < thr) & from1)
    width = keys.ink0.width if t < 0.5 else keys.ink1.width
    ink = thin_to_width(band, width, int(cfg.line["gap_close"]))
    paper = (1.0 - t) * keys.ink0.paper + t * keys.ink1.paper
    colour = (1.0 - t) * keys.ink0.colour + t * keys.ink1.colour
    return render(ink, paper.astype(np.float32), colour.astype(np.float32))


def gap_frames(mode: str, keys: GapKeys, times: list[float], cfg: InbetweenConfig,
               flow_method: str, field: str) -> Iterator[np.ndarray]:
    """One frame per time in `times` (each strictly between 0 and 1)."""
    if mode == "hold":
        for _ in times:
            yield keys.rgb0.copy()
        return
    if mode == "dissolve":
        for t in times:
            yield ((1.0 - t) * keys.rgb0 + t * keys.rgb1).astype(np.float32)
        return
    if mode not in ("flow", "line_aware", "line_aware_tone"):
        raise ValueError(f"mode: {mode!r} is not one of {', '.join(MODES)}")
    if not times:
        return
    flows = gap_flows(keys, flow_method, field, cfg.flow, float(cfg.ink["dt_cap"]))
    make = {"flow": lambda t: flow_frame(keys, flows, t),
            "line_aware": lambda t: line_aware_frame(keys, flows, t, cfg),
            "line_aware_tone": lambda t: line_aware_tone_frame(keys, flows, t, cfg)}[mode]
    for t in times:
        yield make(t)
