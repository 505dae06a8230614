"""Dense optical flow (OpenCV DIS or Farneback) between two keys and warping to an in-between time."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import cv2
import numpy as np

FLOW_METHODS = ("dis", "farneback")


def field_u8(field: np.ndarray, cap: float) -> np.ndarray:
    """A distance field (0..cap px) or a luma image (0..1, pass cap=1) as the 8-bit image flow wants."""
    return np.clip(field * (255.0 / cap), 0, 255).astype(np.uint8)


def dark_centroid_shift(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(dx, dy) moving the darkness-weighted centroid of 8-bit image a onto b's: the initial flow,
    so the flow solver only has to find the motion left after the whole drawing's travel."""
    def centroid(img: np.ndarray) -> tuple[float, float]:
        w = 255.0 - img.astype(np.float64)
        total = w.sum()
        if total <= 0:
            return 0.0, 0.0
        ys, xs = np.indices(img.shape)
        return float((w * xs).sum() / total), float((w * ys).sum() / total)
    (ax, ay), (bx, by) = centroid(a), centroid(b)
    return bx - ax, by - ay


def compute_flow(a: np.ndarray, b: np.ndarray, method: str, cfg: Mapping[str, Any],
                 initial: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """Flow f with a(x) ~ b(x + f(x)), (H, W, 2) float32 (dx, dy). b is first moved back by the
    uniform `initial` shift; the solver finds the rest, and the shift is added back."""
    if initial != (0.0, 0.0):
        m = np.array([[1.0, 0.0, initial[0]], [0.0, 1.0, initial[1]]], np.float32)
        b = cv2.warpAffine(b, m, (b.shape[1], b.shape[0]), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                           borderMode=cv2.BORDER_REPLICATE)
    if method == "dis":
        dis = cv2.DISOpticalFlow_create(int(cfg["dis_preset"]))  # type: ignore[attr-defined]
        flow = dis.calc(a, b, None).astype(np.float32)
    elif method == "farneback":
        no_init: Any = None  # OpenCV 4's stubs refuse None for the flow argument, 5's accept it
        flow = cv2.calcOpticalFlowFarneback(
            a, b, no_init, float(cfg["farneback_pyr_scale"]), int(cfg["farneback_levels"]),
            int(cfg["farneback_winsize"]), int(cfg["farneback_iterations"]), int(cfg["farneback_poly_n"]),
            float(cfg["farneback_poly_sigma"]), 0).astype(np.float32)
    else:
        raise ValueError(f"flow_method: {method!r} is not one of {', '.join(FLOW_METHODS)}")
    flow[..., 0] += initial[0]
    flow[..., 1] += initial[1]
    return flow


def _grid(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float32)
    return xs, ys


def warp(img: np.ndarray, flow: np.ndarray, border: float | tuple[float, ...]) -> np.ndarray:
    """out(x) = img(x + flow(x)), bilinear; outside the image reads `border`."""
    xs, ys = _grid(flow.shape[:2])
    value = border if isinstance(border, tuple) else (border,) * 4
    return cv2.remap(img, xs + flow[..., 0], ys + flow[..., 1], cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_CONSTANT, borderValue=value)


def time_flows(f01: np.ndarray, f10: np.ndarray, t: float) -> tuple[np.ndarray, np.ndarray]:
    """Flows from the in-between at time t (0..1) back to key 0 and to key 1 (linear-motion
    approximation of Super SloMo: F_t0 = -(1-t) t F01 + t^2 F10, F_t1 = (1-t)^2 F01 - t (1-t) F10)."""
    ft0 = -(1.0 - t) * t * f01 + t * t * f10
    ft1 = (1.0 - t) ** 2 * f01 - t * (1.0 - t) * f10
    return ft0.astype(np.float32), ft1.astype(np.float32)
