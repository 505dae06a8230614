"""AudioFeatures: per-video-frame onset, RMS, bands, centroid, chroma and beats on one time base."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.ndimage import median_filter

from .audio_input import check_clip, check_fps, frame_count
from .beats import estimate_tempo, track_beats
from .config import PatternsConfig, default_config
from .smoothing import attack_release, coefficient
from .spectral import Grid, RawFeatures, analyse, make_grid

SCALARS = ("onset", "rms", "low", "mid", "high", "centroid", "beat")


@dataclass
class AudioFeatures:
    """Every array has n_frames rows; frame k is the video frame shown during [k/fps, (k+1)/fps)."""

    fps: float
    n_frames: int
    duration_s: float
    sample_rate: int
    channels: int
    tempo_bpm: float
    beat_times: np.ndarray  # seconds
    values: dict[str, np.ndarray]  # SCALARS, each [n_frames] in 0..1 (smoothed)
    chroma: np.ndarray  # [n_frames, 12] in 0..1
    raw_onset: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))  # unsmoothed, 0..1

    def feature(self, name: str) -> np.ndarray:
        if name not in self.values:
            raise ValueError(f"feature: unknown feature {name!r} (known: {', '.join(SCALARS)})")
        return self.values[name]

    def beat_frames(self) -> np.ndarray:
        return np.minimum((self.beat_times * self.fps).astype(np.int64), self.n_frames - 1)

    def summary(self) -> dict[str, Any]:
        return {"fps": self.fps, "frames": self.n_frames, "duration_s": round(self.duration_s, 4),
                "sample_rate": self.sample_rate, "channels": self.channels,
                "tempo_bpm": round(self.tempo_bpm, 2), "beats": int(self.beat_times.size)}


def _scale(x: np.ndarray, percentile: float) -> np.ndarray:
    """Map the given percentile to 1 and clip to 0..1; an all-zero input stays zero."""
    top = float(np.percentile(x, percentile)) if x.size else 0.0
    if top <= 0:
        top = float(x.max()) if x.size else 0.0
    return np.clip(x / top, 0.0, 1.0) if top > 0 else np.zeros_like(x)


def _onset(raw: RawFeatures, grid: Grid, config: PatternsConfig) -> tuple[np.ndarray, np.ndarray]:
    """Adaptive-threshold flux at the analysis rate, and its per-video-frame maximum."""
    width = int(config.audio["onset_subtract_median_s"] * grid.rate) | 1
    flux = raw.flux
    if width > 1 and flux.size > 1:  # silence before the clip: the first frame is not its own baseline
        flux = np.maximum(flux - median_filter(flux, size=width, mode="constant", cval=0.0), 0.0)
    per_frame = flux.reshape(grid.n_frames, grid.sub).max(axis=1)
    return flux, per_frame


def _centroid(hz: np.ndarray, config: PatternsConfig) -> np.ndarray:
    lo, hi = config.audio["centroid_min_hz"], config.audio["centroid_max_hz"]
    c = np.log2(np.maximum(hz, lo) / lo) / np.log2(hi / lo)
    return np.where(hz > 0, np.clip(c, 0.0, 1.0), 0.0)


def _beat_pulse(beat_times: np.ndarray, n: int, fps: float, config: PatternsConfig) -> np.ndarray:
    hit = np.zeros(n)
    if beat_times.size:
        hit[np.minimum((beat_times * fps).astype(np.int64), n - 1)] = 1.0
    return attack_release(hit, 0.0, config.beats["pulse_release_s"], fps)


def _silent(n: int, clip_info: tuple[float, int, int], fps: float) -> AudioFeatures:
    duration, sr, ch = clip_info
    zeros = {k: np.zeros(n) for k in SCALARS}
    return AudioFeatures(fps, n, duration, sr, ch, 0.0, np.zeros(0), zeros, np.zeros((n, 12)), np.zeros(n))


def extract_features(waveform: Any, sample_rate: Any, fps: float,
                     config: PatternsConfig | None = None) -> AudioFeatures:
    """waveform [C, T] / [1, C, T] at sample_rate -> features for round(duration * fps) frames."""
    cfg = config or default_config()
    fps = check_fps(fps, cfg)
    clip = check_clip(waveform, sample_rate, cfg)
    n = frame_count(clip.duration_s, fps)
    grid = make_grid(clip.sample_rate, fps, n, cfg)
    raw = analyse(clip, grid, cfg)
    info = (clip.duration_s, clip.sample_rate, clip.channels)
    if float(np.sqrt(np.mean(raw.rms ** 2))) < cfg.audio["silence_rms"]:
        return _silent(n, info, fps)
    pct = cfg.audio["norm_percentile"]
    flux, onset = _onset(raw, grid, cfg)
    tempo = estimate_tempo(flux, grid.rate, cfg)
    beat_times = track_beats(flux, grid.rate, tempo, cfg)
    band_amp = np.sqrt(raw.bands)
    unsmoothed = {"onset": _scale(onset, pct), "rms": _scale(raw.rms, pct), "low": _scale(band_amp[:, 0], pct),
                  "mid": _scale(band_amp[:, 1], pct), "high": _scale(band_amp[:, 2], pct),
                  "centroid": _centroid(raw.centroid_hz, cfg)}
    values = {k: attack_release(v, *cfg.smoothing[k], fps) for k, v in unsmoothed.items()}
    values["beat"] = _beat_pulse(beat_times, n, fps, cfg)
    cmax = raw.chroma.max(axis=1, keepdims=True)
    chroma = np.where(cmax > 0, raw.chroma / np.maximum(cmax, 1e-30), 0.0)
    chroma = attack_release(chroma, *cfg.smoothing["chroma"], fps)
    return AudioFeatures(fps, n, *info, tempo, beat_times, values, chroma, unsmoothed["onset"])


__all__ = ["SCALARS", "AudioFeatures", "coefficient", "extract_features"]
