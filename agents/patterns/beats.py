"""Tempo (autocorrelation with a log-normal prior) and beat times (Ellis 2007 dynamic programming)
from the onset envelope at the analysis rate."""

from __future__ import annotations

import numpy as np

from .config import PatternsConfig


def estimate_tempo(onset: np.ndarray, rate: float, config: PatternsConfig) -> float:
    """BPM, or 0.0 when the envelope has no periodicity to measure (silence, one onset)."""
    b = config.beats
    lo_lag = max(1, int(np.floor(rate * 60.0 / b["max_bpm"])))
    hi_lag = int(np.ceil(rate * 60.0 / b["min_bpm"]))
    x = onset - onset.mean()
    if hi_lag >= x.size or not np.any(x):
        return 0.0
    size = int(2 ** np.ceil(np.log2(2 * x.size)))
    spec = np.fft.rfft(x, size)
    ac = np.fft.irfft(spec * np.conj(spec), size)[: hi_lag + 2]
    lags = np.arange(lo_lag, hi_lag + 1)
    bpm = 60.0 * rate / lags
    prior = np.exp(-0.5 * (np.log2(bpm / b["prior_bpm"]) / b["prior_octaves"]) ** 2)
    score = ac[lags] * prior
    if score.max() <= 0:
        return 0.0
    i = int(np.argmax(score))
    lag = float(lags[i])
    if 0 < i < lags.size - 1:  # parabolic refinement of the peak
        y0, y1, y2 = score[i - 1], score[i], score[i + 1]
        den = y0 - 2 * y1 + y2
        if den < 0:
            lag += 0.5 * (y0 - y2) / den
    return float(60.0 * rate / lag)


def track_beats(onset: np.ndarray, rate: float, bpm: float, config: PatternsConfig) -> np.ndarray:
    """Beat times in seconds (analysis-frame centres), empty when bpm is 0 or the envelope is flat."""
    if bpm <= 0 or onset.size < 2 or not np.any(onset > 0):
        return np.zeros(0)
    period = rate * 60.0 / bpm
    env = onset / max(float(onset.std()), 1e-12)
    n = env.size
    score = env.copy()
    back = -np.ones(n, dtype=np.int64)
    lo, hi = int(np.round(period / 2)), int(np.round(2 * period))
    offsets = np.arange(lo, hi + 1)
    penalty = -config.beats["tightness"] * np.log(offsets / period) ** 2
    for i in range(lo, n):
        prev = i - offsets
        ok = prev >= 0
        cand = score[prev[ok]] + penalty[ok]
        j = int(np.argmax(cand))
        if cand[j] > 0:
            score[i] += cand[j]
            back[i] = prev[ok][j]
    tail = max(0, n - int(np.ceil(period)))
    i = tail + int(np.argmax(score[tail:]))
    beats = []
    while i >= 0:
        beats.append(i)
        i = int(back[i])
    idx = np.array(beats[::-1])
    strong = env[idx] > 0.5 * np.median(env[idx]) if idx.size else idx.astype(bool)
    return (idx[strong] + 0.5) / rate
