"""Benchmark audio made by code, each with its exact onset (and beat) truth: click tracks, tone bursts
over a sweep, a loud/quiet alternation, and a short piece of synthesised music (plucked harmonic notes,
kick and hi-hat) standing in for a General MIDI render (no synthesiser or soundfont is installed here)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "pure"))
from patterns_signals import click_track, sweep, tone_bursts  # noqa: E402


@dataclass(frozen=True)
class Signal:
    name: str
    audio: np.ndarray  # mono float32
    onsets: np.ndarray  # seconds
    beats: np.ndarray  # seconds (may be empty)
    loud: np.ndarray | None = None  # per-sample bool: the loud half of a loud/quiet signal


def clicks(sr: int, dur: float, rng: np.random.Generator, bpm: float = 120.0) -> Signal:
    beats = np.arange(0.25, dur - 0.1, 60.0 / bpm)
    onsets = beats + rng.uniform(-0.01, 0.01, beats.size)
    return Signal("click track", click_track(onsets, sr, dur), onsets, beats)


def bursts_over_sweep(sr: int, dur: float, rng: np.random.Generator) -> Signal:
    onsets = np.sort(rng.uniform(0.3, dur - 0.3, int(dur * 1.5)))
    onsets = onsets[np.concatenate([[True], np.diff(onsets) > 0.3])]
    fade_in = np.minimum(1.0, np.arange(int(round(sr * dur))) / (0.5 * sr))  # the sweep itself is no onset
    x = tone_bursts(onsets, rng.uniform(200, 2000, onsets.size), sr, dur) + sweep(sr, dur, amp=0.1) * fade_in
    return Signal("tone bursts over a sweep", x.astype(np.float32), onsets, np.zeros(0))


def _note(f: float, sr: int, length: float) -> np.ndarray:
    t = np.arange(int(length * sr)) / sr
    env = np.minimum(1.0, t / 0.003) * np.exp(-t * 4.0) * np.clip((length - t) / 0.02, 0, 1)
    return env * sum(np.sin(2 * np.pi * f * h * t) / h ** 1.5 for h in range(1, 6))


def _kick(sr: int) -> np.ndarray:
    t = np.arange(int(0.15 * sr)) / sr
    return np.sin(2 * np.pi * (50 * t + 60 * (1 - np.exp(-t * 30)) / 30)) * np.exp(-t * 25)


def music(sr: int, dur: float, rng: np.random.Generator, bpm: float = 110.0) -> Signal:
    """Eighth-note melody in A minor, kick on every beat, hi-hat on the off-beats."""
    x = np.zeros(int(dur * sr))
    beat = 60.0 / bpm
    scale = 220.0 * 2 ** (np.array([0, 2, 3, 5, 7, 8, 10, 12]) / 12)
    onsets, beats = [], []
    t = 0.3
    while t < dur - 0.5:
        for sub in (0.0, 0.5):
            start = t + sub * beat
            i = int(start * sr)
            onsets.append(start)  # a kick or a hi-hat on every eighth, a note on most
            if rng.random() < 0.85 or sub == 0.0:
                n = _note(float(rng.choice(scale)), sr, beat * 0.9)
                x[i:i + n.size] += 0.25 * n[: x.size - i]
            if sub == 0.0:
                k = _kick(sr)
                x[i:i + k.size] += 0.5 * k[: x.size - i]
                beats.append(start)
            else:
                h = rng.standard_normal(int(0.03 * sr)) * np.exp(-np.arange(int(0.03 * sr)) / (0.005 * sr))
                x[i:i + h.size] += 0.08 * h[: x.size - i]
        t += beat
    return Signal("synthesised music", (x / max(1.0, np.abs(x).max())).astype(np.float32),
                  np.array(sorted(set(np.round(onsets, 6)))), np.array(beats))


def loud_quiet(sr: int, dur: float, rng: np.random.Generator) -> Signal:
    """Music whose level alternates every second between full and -30 dB."""
    base = music(sr, dur, rng)
    t = np.arange(base.audio.size) / sr
    loud = (np.floor(t) % 2) == 0
    return Signal("loud/quiet alternation", (base.audio * np.where(loud, 1.0, 0.03)).astype(np.float32),
                  base.onsets, base.beats, loud)
