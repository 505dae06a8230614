"""The schedule a run used, drawn as an RGB image with OpenCV (no matplotlib: it is not among
ComfyUI's requirements). CFG per model call: blue points ran the uncond pass, orange skipped it
(cfg 1), grey are early-stop calls that evaluated nothing."""

from __future__ import annotations

import cv2
import numpy as np

BLUE = (51, 102, 204)  # RGB (the image is RGB)
ORANGE = (224, 123, 0)
GREY = (153, 153, 153)
INK = (40, 40, 40)
GRID = (225, 225, 225)
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_MARGIN = (56, 16, 40, 36)  # left, right, top, bottom


def _title(summary: dict) -> str:
    return (f"{summary.get('schedule', '')}: {summary.get('model_calls', 0)} calls, "
            f"{summary.get('uncond_calls', 0)} with uncond, steps used {summary.get('steps_used')}/"
            f"{summary.get('steps')}")


def plot_schedule_rgb(summary: dict, width: int = 640, height: int = 320) -> np.ndarray:
    """uint8 [height, width, 3] RGB."""
    if not (64 <= width <= 4096 and 64 <= height <= 4096):
        raise ValueError(f"plot size: width and height must be in [64, 4096], got {width}x{height}")
    img = np.full((height, width, 3), 255, np.uint8)
    left, right, top, bottom = _MARGIN
    x0, x1, y0, y1 = left, width - right, top, height - bottom
    calls = summary.get("calls", []) or []
    cfgs = [float(c["cfg"]) for c in calls]
    hi = max([*cfgs, 1.0]) * 1.1
    lo = min([*cfgs, 1.0, 0.0])
    n = max(len(calls) - 1, 1)

    def px(i: float, v: float) -> tuple[int, int]:
        return int(round(x0 + (x1 - x0) * i / n)), int(round(y1 - (y1 - y0) * (v - lo) / max(hi - lo, 1e-9)))

    for k in range(5):  # horizontal grid with CFG labels
        v = lo + (hi - lo) * k / 4
        y = px(0, v)[1]
        cv2.line(img, (x0, y), (x1, y), GRID, 1)
        cv2.putText(img, f"{v:.1f}", (4, y + 4), _FONT, 0.35, INK, 1, cv2.LINE_AA)
    cv2.rectangle(img, (x0, y0), (x1, y1), INK, 1)
    pts = [px(c["index"], v) for c, v in zip(calls, cfgs, strict=True)]
    if len(pts) > 1:
        cv2.polylines(img, [np.array(pts, np.int32)], False, BLUE, 2, cv2.LINE_AA)
    for c, p in zip(calls, pts, strict=True):
        colour = GREY if c.get("skipped") else (BLUE if c.get("uncond") else ORANGE)
        cv2.circle(img, p, 4, colour, -1, cv2.LINE_AA)
    cv2.putText(img, _title(summary), (x0, 24), _FONT, 0.42, INK, 1, cv2.LINE_AA)
    cv2.putText(img, "model call", (x1 - 80, height - 12), _FONT, 0.38, INK, 1, cv2.LINE_AA)
    cv2.putText(img, "CFG", (4, y0 - 6), _FONT, 0.38, INK, 1, cv2.LINE_AA)
    legend = [(ORANGE, "uncond skipped (cfg 1)")]
    if any(c.get("skipped") for c in calls):
        legend.append((GREY, "early stop (no model call)"))
    for k, (colour, text) in enumerate(legend):
        y = y0 + 14 + 14 * k
        cv2.circle(img, (x1 - 170, y - 4), 4, colour, -1, cv2.LINE_AA)
        cv2.putText(img, text, (x1 - 160, y), _FONT, 0.35, INK, 1, cv2.LINE_AA)
    return img
