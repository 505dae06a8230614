"""Chunked STFT analysis on the video time base: per analysis frame flux, band powers, centroid, chroma;
per video frame RMS. Memory is bounded by one chunk whatever the clip's length."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .audio_input import AudioClip
from .config import PatternsConfig


@dataclass(frozen=True)
class Grid:
    """The one time base: video frame k covers [k/fps, (k+1)/fps); it holds `sub` analysis frames."""

    sample_rate: int
    fps: float
    n_frames: int
    sub: int
    n_fft: int

    @property
    def rate(self) -> float:
        """Analysis frames per second."""
        return self.fps * self.sub

    def centres(self, j0: int, j1: int) -> np.ndarray:
        """Sample index at the centre of analysis frames j0..j1-1."""
        j = np.arange(j0, j1, dtype=np.float64)
        return np.floor((j + 0.5) * self.sample_rate / self.rate).astype(np.int64)

    def frame_start(self, k: int) -> int:
        return int(np.floor(k * self.sample_rate / self.fps))


def make_grid(sample_rate: int, fps: float, n_frames: int, config: PatternsConfig) -> Grid:
    a = config.audio
    sub = max(1, int(np.ceil(1.0 / (fps * a["analysis_hop_s"]))))
    n_fft = int(2 ** np.ceil(np.log2(max(16.0, a["window_s"] * sample_rate))))
    return Grid(sample_rate, fps, n_frames, sub, n_fft)


@dataclass
class RawFeatures:
    """Unnormalised features: analysis rate (flux) and video rate (the rest)."""

    flux: np.ndarray  # [n_frames * sub]
    rms: np.ndarray  # [n_frames]
    bands: np.ndarray  # [n_frames, 3] mean power low/mid/high
    centroid_hz: np.ndarray  # [n_frames]
    chroma: np.ndarray  # [n_frames, 12] mean power per pitch class


def _bin_tables(grid: Grid, config: PatternsConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    a = config.audio
    freqs = np.fft.rfftfreq(grid.n_fft, 1.0 / grid.sample_rate)
    band = np.digitize(freqs, [a["low_max_hz"], a["mid_max_hz"]])  # 0 low, 1 mid, 2 high
    bands = np.stack([(band == i) for i in range(3)], axis=1).astype(np.float32)
    chroma = np.zeros((freqs.size, 12), dtype=np.float32)
    ok = (freqs >= a["chroma_min_hz"]) & (freqs <= a["chroma_max_hz"])
    pitch = np.round(12 * np.log2(np.where(ok, freqs, 1.0) / 440.0)).astype(np.int64) + 9  # C = 0
    chroma[np.nonzero(ok)[0], pitch[ok] % 12] = 1.0
    return freqs.astype(np.float32), bands, chroma


def _frames_per_chunk(grid: Grid, config: PatternsConfig) -> int:
    """Video frames per chunk: about chunk_s of audio, and at most ~8M window samples in flight."""
    by_time = int(config.audio["chunk_s"] * grid.fps)
    by_memory = (1 << 23) // (grid.n_fft * grid.sub)
    return max(1, min(by_time, by_memory))


def analyse(clip: AudioClip, grid: Grid, config: PatternsConfig) -> RawFeatures:
    freqs, band_w, chroma_w = _bin_tables(grid, config)
    window = np.hanning(grid.n_fft).astype(np.float32)
    gamma = config.audio["log_compression"]
    ahead = int(round(config.audio["window_lookahead"] * grid.n_fft))
    behind = grid.n_fft - ahead
    n, sub = grid.n_frames, grid.sub
    out = RawFeatures(np.zeros(n * sub), np.zeros(n), np.zeros((n, 3)), np.zeros(n), np.zeros((n, 12)))
    prev = np.zeros(freqs.size, dtype=np.float32)  # the clip starts from silence: a sound at t=0 is an onset
    step = _frames_per_chunk(grid, config)
    for k0 in range(0, n, step):
        k1 = min(n, k0 + step)
        centres = grid.centres(k0 * sub, k1 * sub)
        seg_start = int(centres[0]) - behind
        seg = clip.mono(seg_start, int(centres[-1]) + ahead)
        idx = (centres - behind - seg_start)[:, None] + np.arange(grid.n_fft)[None, :]
        mag = np.abs(np.fft.rfft(seg[idx] * window, axis=1)).astype(np.float32)
        logmag = np.log1p(gamma * mag)
        diff = np.diff(np.concatenate([prev[None, :], logmag]), axis=0)
        out.flux[k0 * sub:k1 * sub] = np.maximum(diff, 0.0).sum(axis=1)
        prev = logmag[-1]
        power = mag.astype(np.float64) ** 2 / grid.n_fft
        total = mag.sum(axis=1)
        cent = np.where(total > 0, (mag @ freqs) / np.maximum(total, 1e-30), 0.0)
        m = k1 - k0
        out.bands[k0:k1] = (power @ band_w).reshape(m, sub, 3).mean(axis=1)
        out.chroma[k0:k1] = (power @ chroma_w).reshape(m, sub, 12).mean(axis=1)
        out.centroid_hz[k0:k1] = cent.reshape(m, sub).mean(axis=1)
        out.rms[k0:k1] = _rms(clip, grid, k0, k1)
    return out


def _rms(clip: AudioClip, grid: Grid, k0: int, k1: int) -> np.ndarray:
    """Exact RMS of each video frame's own samples (a frame shorter than one sample uses its nearest sample)."""
    starts = np.array([grid.frame_start(k) for k in range(k0, k1 + 1)])
    ends = np.maximum(starts[1:], starts[:-1] + 1)
    seg = clip.mono(int(starts[0]), int(ends[-1])).astype(np.float64)
    csum = np.concatenate([[0.0], np.cumsum(seg * seg)])
    a, b = starts[:-1] - starts[0], ends - starts[0]
    return np.sqrt(np.maximum(csum[b] - csum[a], 0.0) / (b - a))
