"""A drawn plot of the per-frame features (one lane per feature, beats as ticks) as an RGB array."""

from __future__ import annotations

import cv2
import numpy as np

from .audio_features import AudioFeatures
from .config import PatternsConfig, default_config

LANES = ("onset", "rms", "low", "mid", "high", "centroid", "beat")
_COLOURS = ((231, 76, 60), (241, 196, 15), (155, 89, 182), (52, 152, 219), (46, 204, 113), (230, 126, 34),
            (236, 240, 241))
_MARGIN = 70  # px for the lane labels
_BG, _GRID, _TEXT = 24, (60, 60, 60), (200, 200, 200)


def plot_features(f: AudioFeatures, config: PatternsConfig | None = None) -> np.ndarray:
    """[H, W, 3] float 0..1; frames are binned to the plot width (max per bin, so short onsets stay visible)."""
    cfg = config or default_config()
    w, h = int(cfg.plot["width"]), int(cfg.plot["height"])
    img = np.full((h, w, 3), _BG, np.uint8)
    lane_h = h // len(LANES)
    cols = w - _MARGIN
    bins = np.minimum((np.arange(f.n_frames) * cols) // max(1, f.n_frames), cols - 1)
    for i, (name, colour) in enumerate(zip(LANES, _COLOURS, strict=True)):
        top = i * lane_h
        binned = np.zeros(cols)
        np.maximum.at(binned, bins, f.values[name])
        used = np.unique(bins)
        ys = top + lane_h - 2 - binned[used] * (lane_h - 6)
        pts = np.stack([_MARGIN + used, ys], 1).astype(np.int32)
        cv2.line(img, (_MARGIN, top + lane_h - 1), (w - 1, top + lane_h - 1), _GRID, 1)
        cv2.polylines(img, [pts.reshape(-1, 1, 2)], False, colour, 1, cv2.LINE_AA)
        cv2.putText(img, name, (4, top + lane_h // 2 + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.4, _TEXT, 1, cv2.LINE_AA)
    for b in f.beat_frames():
        x = _MARGIN + int(bins[b])
        cv2.line(img, (x, 0), (x, 3), _TEXT, 1)
    label = f"{f.duration_s:.2f} s  {f.n_frames} frames @ {f.fps:g} fps  tempo {f.tempo_bpm:.1f} bpm"
    cv2.putText(img, label, (_MARGIN, h - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.35, _TEXT, 1, cv2.LINE_AA)
    return img.astype(np.float32) / 255.0
