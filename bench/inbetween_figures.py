"""Line-art sequences with exact ground truth for the in-betweening benchmark and tests.

- figure_sequence: a procedural articulated stick figure (head, torso, two 2-segment arms and legs)
  moving non-linearly: its hip travels an arc with ease-in/out, the body rotates, one arm swings
  across the torso (a limb crossing the body), the legs step. Every frame is rendered from the pose
  at its time, so the held-out frames are the truth.
- warped_sequence: a real drawing moved by a known smooth non-rigid warp (a rotation about the
  centre plus Gaussian displacement bumps, each eased in time); frames are the drawing remapped.
  Warp-made truth favours flow methods (the truth is itself a warp).
"""

from __future__ import annotations

import math

import cv2
import numpy as np


def ease(t: float) -> float:
    """Smoothstep ease-in/out on 0..1."""
    return t * t * (3.0 - 2.0 * t)


def _limb(canvas: np.ndarray, start: tuple[float, float], a1: float, a2: float, l1: float, l2: float,
          width: int, scale: int) -> None:
    x0, y0 = start
    x1, y1 = x0 + l1 * math.sin(a1), y0 + l1 * math.cos(a1)
    x2, y2 = x1 + l2 * math.sin(a1 + a2), y1 + l2 * math.cos(a1 + a2)
    pts = [(x0, y0), (x1, y1), (x2, y2)]
    for (xa, ya), (xb, yb) in zip(pts[:-1], pts[1:], strict=True):
        cv2.line(canvas, (int(xa * scale), int(ya * scale)), (int(xb * scale), int(yb * scale)), 0,
                 width, cv2.LINE_AA, shift=int(math.log2(scale)))


def figure_frame(t: float, size: int = 512, width: int = 3) -> np.ndarray:
    """The figure at time t in 0..1 as (size, size, 3) float32, black ink on white."""
    s = size / 512.0
    e = ease(t)
    cx = s * (140 + 230 * e)  # hip on an arc: ease-in/out across, up and down
    cy = s * (330 - 70 * math.sin(math.pi * e))
    tilt = 0.5 * math.sin(2.0 * math.pi * t)  # body rotation
    torso = 110 * s
    scale = 16
    canvas = np.full((size, size), 255, np.uint8)
    nx, ny = cx + torso * math.sin(math.pi + tilt), cy + torso * math.cos(math.pi + tilt)
    _limb(canvas, (cx, cy), math.pi + tilt, 0.0, torso, 0.0, width, scale)
    head = (nx + 28 * s * math.sin(math.pi + tilt), ny + 28 * s * math.cos(math.pi + tilt))
    cv2.circle(canvas, (int(head[0] * scale), int(head[1] * scale)), int(26 * s * scale), 0, width, cv2.LINE_AA,
               shift=4)
    swing = -1.4 + 2.8 * e  # this arm swings from behind to across the torso
    _limb(canvas, (nx, ny), swing + tilt, -0.6 + 0.9 * t, 60 * s, 55 * s, width, scale)
    _limb(canvas, (nx, ny), 0.7 * math.cos(math.pi * t) + tilt, 0.5, 60 * s, 50 * s, width, scale)
    step = math.sin(2.0 * math.pi * e)
    _limb(canvas, (cx, cy), 0.45 * step + tilt, -0.3 - 0.4 * max(step, 0), 75 * s, 70 * s, width, scale)
    _limb(canvas, (cx, cy), -0.45 * step + tilt, -0.3 - 0.4 * max(-step, 0), 75 * s, 70 * s, width, scale)
    gray = canvas.astype(np.float32) / 255.0
    return np.repeat(gray[:, :, None], 3, axis=2)


def figure_sequence(n_frames: int, size: int = 512, width: int = 3) -> list[np.ndarray]:
    return [figure_frame(i / (n_frames - 1), size, width) for i in range(n_frames)]


def _warp_field(shape: tuple[int, int], t: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    h, w = shape
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    e = ease(t)
    angle = 0.25 * e
    cx, cy = w / 2.0, h / 2.0
    c, s = math.cos(angle), math.sin(angle)
    mx = cx + c * (xs - cx) + s * (ys - cy) - 0.06 * w * e
    my = cy - s * (xs - cx) + c * (ys - cy) + 0.03 * h * math.sin(math.pi * t)
    for _ in range(3):
        bx, by = rng.uniform(0.25, 0.75) * w, rng.uniform(0.25, 0.75) * h
        sigma = rng.uniform(0.12, 0.25) * min(h, w)
        dx, dy = rng.uniform(-0.06, 0.06, 2) * min(h, w)
        bump = np.exp(-((xs - bx) ** 2 + (ys - by) ** 2) / (2 * sigma * sigma)) * ease(min(1.0, 1.2 * t))
        mx += dx * bump
        my += dy * bump
    return mx, my


def warped_sequence(drawing: np.ndarray, n_frames: int, seed: int = 0) -> list[np.ndarray]:
    """drawing (H, W, 3) float32 on white, moved by the known warp at n_frames times 0..1."""
    out = []
    for i in range(n_frames):
        mx, my = _warp_field(drawing.shape[:2], i / (n_frames - 1), seed)
        out.append(cv2.remap(drawing, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                             borderValue=(1.0, 1.0, 1.0, 1.0)).astype(np.float32))
    return out
