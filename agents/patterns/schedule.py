"""Per-frame controls from features and a mapping preset: latent z, zoom, warp, palette position,
pattern time, and which two weight sets blend by how much (switched on beats)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .audio_features import AudioFeatures
from .config import MappingPreset, PatternsConfig


@dataclass(frozen=True)
class Schedule:
    z: np.ndarray  # [n, latent]
    zoom: np.ndarray  # [n]
    warp: np.ndarray  # [n]
    palette_pos: np.ndarray  # [n]
    time: np.ndarray  # [n]
    set_a: np.ndarray  # [n] int
    set_b: np.ndarray  # [n] int
    blend: np.ndarray  # [n] 0..1 (0 = set_a)
    transition: str


def _switch_frames(features: AudioFeatures, preset: MappingPreset, config: PatternsConfig) -> np.ndarray:
    """Every N-th beat that carries an onset: each beat moves to the strongest onset frame within
    render.beat_snap_frames (beats are tracked on a finer grid than frames), and a beat with no onset of at
    least render.switch_min_onset there (a tracked beat in a pause) does not switch."""
    every = int(preset.nums["beats_per_switch"])
    beats = features.beat_frames()
    if not beats.size:
        return beats
    snap, onset = config.rint("beat_snap_frames"), features.raw_onset
    chosen = []
    for b in beats[every - 1::every]:
        lo, hi = max(0, int(b) - snap), min(features.n_frames, int(b) + snap + 1)
        k = lo + int(np.argmax(onset[lo:hi]))
        if onset[k] >= config.render["switch_min_onset"]:
            chosen.append(k)
    return np.array(chosen, dtype=np.int64)


def _ease(ramp: np.ndarray, k: float) -> np.ndarray:
    """0..1 -> 0..1, steepest at 0 (k > 0), a straight line as k -> 0."""
    return ramp if k < 1e-6 else (1 - np.exp(-k * ramp)) / (1 - np.exp(-k))


def _transitions(features: AudioFeatures, preset: MappingPreset, config: PatternsConfig) -> tuple[np.ndarray, ...]:
    """At each switch frame the blend ramps from the current set to the next over transition_s, easing out
    exponentially (render.transition_ease): the largest step lands on the beat frame itself, so the transition
    reads as the beat, not as a change some frames later. A switch arriving before the ramp ends cuts it short."""
    n, n_sets, ease = features.n_frames, config.rint("weight_sets"), config.render["transition_ease"]
    set_a, set_b, blend = np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros(n)
    if preset.transition == "none" or n_sets < 2:
        return set_a, set_b, blend
    length = max(1, int(round(preset.nums["transition_s"] * features.fps)))
    switches = np.unique(_switch_frames(features, preset, config))
    bounds = np.append(switches, n)
    for i, f in enumerate(switches):
        cur, nxt = i % n_sets, (i + 1) % n_sets
        seg_end, ramp_end = int(bounds[i + 1]), min(int(bounds[i + 1]), int(f) + length)
        ramp = (np.arange(f, ramp_end) - f + 1) / length
        set_a[f:ramp_end], set_b[f:ramp_end], blend[f:ramp_end] = cur, nxt, _ease(ramp, ease)
        set_a[ramp_end:seg_end], set_b[ramp_end:seg_end] = nxt, nxt
    return set_a, set_b, blend


def make_schedule(features: AudioFeatures, preset: MappingPreset, config: PatternsConfig,
                  rng: np.random.Generator) -> Schedule:
    n, latent = features.n_frames, config.rint("latent_dim")
    z = np.tile(rng.standard_normal(latent) * 0.5, (n, 1))
    for name, gain in sorted(preset.z_gains.items()):
        direction = rng.standard_normal(latent)
        direction /= np.linalg.norm(direction) + 1e-12
        z += gain * features.feature(name)[:, None] * direction[None, :]
    nums = preset.nums
    seconds = np.arange(n) / features.fps
    zoom = 1.0 + nums["zoom_gain"] * features.feature(preset.zoom_feature)
    warp = nums["warp_gain"] * features.feature(preset.warp_feature)
    pal = nums["palette_gain"] * features.feature(preset.palette_feature) + nums["palette_drift"] * seconds
    set_a, set_b, blend = _transitions(features, preset, config)
    return Schedule(z, np.maximum(zoom, 0.05), warp, pal, nums["time_speed"] * seconds, set_a, set_b, blend,
                    preset.transition)
