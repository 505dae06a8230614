"""Generated test audio with exact onset truth: click tracks, tone bursts, sweeps (shared by tests and bench)."""

from __future__ import annotations

import numpy as np


def click_track(onsets: np.ndarray, sr: int, duration: float, freq: float = 1000.0, amp: float = 0.8,
                length_s: float = 0.02) -> np.ndarray:
    """Mono float32 [T]: a decaying sine click starting exactly at each onset time."""
    x = np.zeros(int(round(sr * duration)), dtype=np.float64)
    n = max(1, int(length_s * sr))
    t = np.arange(n) / sr
    click = amp * np.sin(2 * np.pi * freq * t) * np.exp(-t * 200.0)
    for o in onsets:
        i = int(round(o * sr))
        m = min(n, x.size - i)
        if m > 0:
            x[i:i + m] += click[:m]
    return x.astype(np.float32)


def tone(freq: float, sr: int, duration: float, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(round(sr * duration))) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def tone_bursts(onsets: np.ndarray, freqs: np.ndarray, sr: int, duration: float, burst_s: float = 0.15,
                amp: float = 0.5) -> np.ndarray:
    x = np.zeros(int(round(sr * duration)), dtype=np.float64)
    n = int(burst_s * sr)
    t = np.arange(n) / sr
    env = np.minimum(1.0, t / 0.002) * np.exp(-t * 8.0) * np.clip((burst_s - t) / 0.03, 0.0, 1.0)  # no cut-off click
    for o, f in zip(onsets, freqs, strict=True):
        i = int(round(o * sr))
        m = min(n, x.size - i)
        if m > 0:
            x[i:i + m] += (amp * env * np.sin(2 * np.pi * f * t))[:m]
    return x.astype(np.float32)


def sweep(sr: int, duration: float, f0: float = 100.0, f1: float = 8000.0, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(round(sr * duration))) / sr
    k = np.log(f1 / f0) / duration
    return (amp * np.sin(2 * np.pi * f0 * (np.exp(k * t) - 1) / k)).astype(np.float32)


def write_wav(path: object, mono: np.ndarray, sr: int, channels: int = 2) -> None:
    """16-bit PCM WAV of a mono signal repeated on `channels` channels (the standard library's wave)."""
    import wave

    pcm = (np.clip(np.repeat(mono[:, None], channels, axis=1), -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes(pcm.tobytes())
