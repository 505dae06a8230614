"""Checks a waveform and reads it as a mono mix, one sample range at a time (bounded memory)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .config import PatternsConfig
from .errors import PatternsError


@dataclass(frozen=True)
class AudioClip:
    """A checked [C, T] waveform (not copied) and its sample rate."""

    samples: Any  # np.ndarray [C, T], float
    sample_rate: int

    @property
    def channels(self) -> int:
        return int(self.samples.shape[0])

    @property
    def length(self) -> int:
        return int(self.samples.shape[1])

    @property
    def duration_s(self) -> float:
        return self.length / self.sample_rate

    def mono(self, start: int, stop: int) -> np.ndarray:
        """Channel mean over [start, stop) as float32, zeros outside the clip; NaN/inf -> PatternsError."""
        out = np.zeros(stop - start, dtype=np.float32)
        lo, hi = max(start, 0), min(stop, self.length)
        if hi > lo:
            seg = np.asarray(self.samples[:, lo:hi], dtype=np.float32)
            if not np.isfinite(seg).all():
                bad = lo + int(np.argwhere(~np.isfinite(seg))[0][1])
                raise PatternsError(f"audio: non-finite sample (NaN or inf) at {bad / self.sample_rate:.3f} s")
            out[lo - start:hi - start] = seg.mean(axis=0)
        return out


def check_fps(fps: float, config: PatternsConfig) -> float:
    lo, hi = config.audio["min_fps"], config.audio["max_fps"]
    if not isinstance(fps, int | float) or isinstance(fps, bool) or not np.isfinite(fps) or not lo <= fps <= hi:
        raise PatternsError(f"fps: expected a number in [{lo:g}, {hi:g}], got {fps!r}")
    return float(fps)


def check_clip(waveform: Any, sample_rate: Any, config: PatternsConfig) -> AudioClip:
    """[C, T] or [1, C, T] samples -> AudioClip; every failure is a one-line PatternsError naming the input."""
    arr = waveform if isinstance(waveform, np.ndarray) else np.asarray(waveform)
    if arr.ndim == 3:
        if arr.shape[0] != 1:
            raise PatternsError(f"audio: a batch of {arr.shape[0]} clips; features are made from one clip (batch 1)")
        arr = arr[0]
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise PatternsError(f"audio: waveform must be [B, C, T], [C, T] or [T], got shape {tuple(arr.shape)}")
    if not np.issubdtype(arr.dtype, np.floating) and not np.issubdtype(arr.dtype, np.integer):
        raise PatternsError(f"audio: waveform must hold numbers, got dtype {arr.dtype}")
    a = config.audio
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int | np.integer | float) \
            or not float(sample_rate).is_integer():
        raise PatternsError(f"audio: sample_rate must be an integer, got {sample_rate!r}")
    sr = int(sample_rate)
    if not a["min_sample_rate"] <= sr <= a["max_sample_rate"]:
        raise PatternsError(f"audio: sample_rate {sr} Hz outside [{a['min_sample_rate']:g}, "
                            f"{a['max_sample_rate']:g}] Hz")
    channels, length = arr.shape
    if not 1 <= channels <= a["max_channels"]:
        raise PatternsError(f"audio: {channels} channels; expected 1..{a['max_channels']:g}")
    if length < 1:
        raise PatternsError("audio: the clip has no samples")
    if length / sr > a["max_duration_s"]:
        raise PatternsError(f"audio: {length / sr:.0f} s is longer than the limit of {a['max_duration_s']:g} s "
                            "(patterns.toml audio.max_duration_s); cut the clip")
    return AudioClip(arr, sr)


def frame_count(duration_s: float, fps: float) -> int:
    """Video frames for a clip: round(duration * fps), at least 1. Never derived from a batch size."""
    return max(1, int(np.floor(duration_s * fps + 0.5)))
