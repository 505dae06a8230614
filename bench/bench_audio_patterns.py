"""Audio-reactive CPPN benchmark: does the picture change when the sound does, on time, and only then?

Generated audio with exact onset truth (bench/audio_signals.py). Every method renders through the same
CPPN, pattern, palette and seed; only the per-frame controls differ:
  ours        M4 Audio Features + the `pulse` mapping preset (onset/bands -> z, zoom, warp, palette, beats)
  quasimondo  a random CPPN animated by scaling z over time, no audio (Quasimondo-style)
  ryan        the amplitude envelope -> z (RyanOnTheInside-style amplitude feature)
  yvann       peak weights of the amplitude envelope -> z (Yvann-style peaks)
Metrics: onset F-measure within +-1 frame (mir_eval; visual change = peaks of frame-difference energy),
beat alignment score, lag of the cross-correlation peak between the onset impulse train and the frame
change, reactivity contrast (change when loud / when quiet), flicker (change away from onsets relative to
change at onsets), largest jump at a beat transition relative to the median change, palette adherence
(mean delta E to the palette), frames/s at 512x512 on 1 and 2 CPU threads, feature memory for a long track.
Run from the repository root: `python bench/bench_audio_patterns.py [--quick]`.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import tracemalloc
from pathlib import Path

import mir_eval
import numpy as np
import torch
from scipy.ndimage import median_filter
from scipy.signal import find_peaks

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from audio_signals import Signal, bursts_over_sweep, clicks, loud_quiet, music  # noqa: E402

from agents.patterns.audio_features import AudioFeatures, extract_features  # noqa: E402
from agents.patterns.palettes import delta_e_to_palette  # noqa: E402
from agents.patterns.render import Renderer, make_renderer, render_chunks, schedule_for  # noqa: E402
from agents.patterns.schedule import Schedule  # noqa: E402

SR, FPS, SIZE, SEED, PRESET = 22050, 30.0, 64, 3, "pulse"
METHODS = ("ours", "quasimondo", "ryan", "yvann")


def _plain(n: int, z: np.ndarray) -> Schedule:
    zeros = np.zeros(n, np.int64)
    return Schedule(z, np.ones(n), np.zeros(n), np.zeros(n), np.zeros(n), zeros, zeros, np.zeros(n), "none")


def _direction(latent: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    d = rng.standard_normal(latent)
    return rng.standard_normal(latent) * 0.5, d / np.linalg.norm(d)


def baseline(method: str, feats: AudioFeatures, audio: np.ndarray, latent: int) -> Schedule:
    n = feats.n_frames
    z0, d = _direction(latent, SEED)
    t = np.arange(n) / FPS
    if method == "quasimondo":  # z scaled by a slow oscillation, no audio
        return _plain(n, z0[None] * (1 + 0.5 * np.sin(2 * np.pi * t / 4.0))[:, None])
    hop = SR / FPS
    amp = np.array([np.abs(audio[int(k * hop):int((k + 1) * hop)]).mean() if int(k * hop) < audio.size else 0.0
                    for k in range(n)])
    amp = amp / max(amp.max(), 1e-12)
    if method == "ryan":  # amplitude envelope straight onto z
        return _plain(n, z0[None] + 2.0 * amp[:, None] * d[None])
    peaks, _ = find_peaks(amp, height=0.3, distance=3)  # peak weights: 1 at a peak, decaying
    w = np.zeros(n)
    for p in peaks:
        w[p:] = np.maximum(w[p:], 0.7 ** np.arange(n - p))
    return _plain(n, z0[None] + 2.0 * w[:, None] * d[None])


def render_all(r: Renderer, sched: Schedule, n: int) -> np.ndarray:
    return torch.cat(list(render_chunks(r, sched, 0, n))).numpy()


def change(frames: np.ndarray) -> np.ndarray:
    """Frame-difference energy; change[k] is between frames k-1 and k (change[0] = 0)."""
    return np.r_[0.0, np.sqrt(((np.diff(frames, axis=0)) ** 2).mean(axis=(1, 2, 3)))]


def visual_onsets(c: np.ndarray) -> np.ndarray:
    """Peaks of the frame change (same rule for every method): peaks at least 3 frames (100 ms) apart, at least twice
    the median change of the surrounding second and at least a tenth of the largest change; frame-centre times."""
    if c.max() <= 0:
        return np.zeros(0)
    local = median_filter(c, size=int(FPS) | 1, mode="nearest")
    peaks, _ = find_peaks(np.r_[c, 0.0], height=0.1 * c.max(), distance=3)
    peaks = peaks[(peaks < c.size) & (c[np.minimum(peaks, c.size - 1)] >= 2.0 * local[np.minimum(peaks, c.size - 1)])]
    return (peaks + 0.5) / FPS


def lag_frames(c: np.ndarray, onsets: np.ndarray, max_lag: int = 10) -> int:
    """Lag of the cross-correlation peak, searched within half the shortest inter-onset interval (a
    periodic onset train would otherwise match one period early or late just as well)."""
    if onsets.size > 1:
        max_lag = max(1, min(max_lag, int(np.diff(np.sort(onsets)).min() * FPS / 2)))
    truth = np.zeros(c.size)
    truth[np.minimum((onsets * FPS).astype(int), c.size - 1)] = 1.0
    a, b = truth - truth.mean(), c - c.mean()
    lags = np.arange(-max_lag, max_lag + 1)
    xc = [np.dot(a[max(0, -k):c.size - max(0, k)], b[max(0, k):c.size - max(0, -k)]) for k in lags]
    return int(lags[int(np.argmax(xc))])


def beat_alignment(beats: np.ndarray, visual: np.ndarray, sigma_s: float = 0.1) -> float:
    if beats.size == 0 or visual.size == 0:
        return 0.0
    d = np.abs(beats[:, None] - visual[None, :]).min(axis=1)
    return float(np.mean(np.exp(-d ** 2 / (2 * sigma_s ** 2))))


def metrics(sig: Signal, frames: np.ndarray, sched: Schedule, lut: np.ndarray) -> dict[str, float]:
    c = change(frames)
    est = visual_onsets(c)
    f, _, _ = mir_eval.onset.f_measure(sig.onsets, est, window=1.0 / FPS)
    at = np.unique(np.minimum((sig.onsets * FPS).astype(int), c.size - 1))
    near = np.zeros(c.size, bool)
    for k in (-2, -1, 0, 1, 2):
        near[np.clip(at + k, 0, c.size - 1)] = True
    out = {"F": f, "BAS": beat_alignment(sig.beats, est), "lag": lag_frames(c, sig.onsets),
           "flicker": float(np.median(c[~near][1:]) / max(np.median(c[at]), 1e-12)),
           "dE": delta_e_to_palette(frames[:: max(1, len(frames) // 8)], lut)}
    trans = np.nonzero(sched.blend > 0)[0]
    out["jump"] = float(c[trans].max() / max(np.median(c[1:]), 1e-12)) if trans.size else float("nan")
    if sig.loud is not None:
        frame_loud = sig.loud[np.minimum((np.arange(c.size) / FPS * SR).astype(int), sig.loud.size - 1)]
        out["contrast"] = float(c[frame_loud][1:].mean() / max(c[~frame_loud].mean(), 1e-12))
    return out


def run_signal(sig: Signal, table: dict[str, dict[str, dict[str, float]]]) -> None:
    feats = extract_features(sig.audio[None], SR, FPS)
    r = make_renderer(PRESET, SIZE, SIZE, SEED)
    lut = r.lut.cpu().numpy()
    for m in METHODS:
        sched = schedule_for(r, feats) if m == "ours" else baseline(m, feats, sig.audio, r.config.rint("latent_dim"))
        table.setdefault(sig.name, {})[m] = metrics(sig, render_all(r, sched, feats.n_frames), sched, lut)


def fps_at(threads: int, frames: int, pattern: str | None = None) -> float:
    torch.set_num_threads(threads)
    sig = clicks(SR, max(2.0, frames / FPS + 0.5), np.random.default_rng(0))
    feats = extract_features(sig.audio[None], SR, FPS)
    r = make_renderer(PRESET, 512, 512, SEED, pattern=pattern)
    sched = schedule_for(r, feats)
    list(render_chunks(r, sched, 0, 1))  # warm-up
    t0 = time.perf_counter()
    n = sum(c.shape[0] for c in render_chunks(r, sched, 1, 1 + frames))
    return n / (time.perf_counter() - t0)


def feature_memory(minutes: float) -> tuple[float, float]:
    x = (0.1 * np.random.default_rng(0).standard_normal(int(SR * 60 * minutes))).astype(np.float32)[None]
    tracemalloc.start()
    t0 = time.perf_counter()
    extract_features(x, SR, FPS)
    dt = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2 ** 20, dt


def _fmt(v: float) -> str:
    return "   -  " if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:6.2f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="shorter signals, fewer timed frames")
    args = ap.parse_args()
    dur, timed, minutes = (5.0, 4, 2.0) if args.quick else (10.0, 12, 10.0)
    rng = np.random.default_rng(7)
    signals = [clicks(SR, dur, rng), bursts_over_sweep(SR, dur, rng), music(SR, dur, rng), loud_quiet(SR, dur, rng)]
    table: dict[str, dict[str, dict[str, float]]] = {}
    torch.set_num_threads(1)
    for sig in signals:
        run_signal(sig, table)
    cols = ("F", "BAS", "lag", "flicker", "jump", "dE", "contrast")
    print(f"{SIZE}x{SIZE} px, {FPS:g} fps, {dur:g} s signals, seed {SEED}, preset {PRESET}; "
          f"load {os.getloadavg()[0]:.1f}")
    for name, rows in table.items():
        print(f"\n{name}")
        print("  method      " + " ".join(f"{c:>7}" for c in cols))
        for m, row in rows.items():
            print(f"  {m:<11} " + " ".join(f"{_fmt(row.get(c, float('nan'))):>7}" for c in cols))
    fps1, fps2 = fps_at(1, timed), fps_at(2, timed)
    print(f"\nframes/s at 512x512, default preset ({PRESET}, 4-layer CPPN): 1 thread {fps1:.1f}, 2 threads {fps2:.1f}"
          f" (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    if not args.quick:
        for pat in ("fractal", "organic", "flowing", "geometric", "voronoi"):
            print(f"  {pat:<10} 1 thread {fps_at(1, 4, pat):.1f} frames/s")
    mem, secs = feature_memory(minutes)
    print(f"features of a {minutes:g}-minute track at {FPS:g} fps: peak {mem:.0f} MB traced "
          f"(input {SR * 60 * minutes * 4 / 2 ** 20:.0f} MB not counted twice), {secs:.1f} s; frames stream in "
          f"chunks of {make_renderer(PRESET, 512, 512, 0).config.rint('max_pixels_per_chunk') * 12 / 2 ** 20:.0f} MB")
    _targets(table, fps1)


def _targets(table: dict[str, dict[str, dict[str, float]]], fps1: float) -> None:
    click, mus = table["click track"], table["synthesised music"]
    lags = [rows["ours"]["lag"] for rows in table.values()]
    checks = [
        ("onset F >= 0.9 on click tracks", click["ours"]["F"] >= 0.9, f"{click['ours']['F']:.2f}"),
        ("onset F >= 0.8 on (synthesised) music", mus["ours"]["F"] >= 0.8, f"{mus['ours']['F']:.2f}"),
        ("ours better than every baseline on F (every signal)",
         all(rows["ours"]["F"] > max(rows[m]["F"] for m in METHODS[1:]) for rows in table.values()),
         ", ".join(f"{n.split()[0]} {r['ours']['F']:.2f} vs {max(r[m]['F'] for m in METHODS[1:]):.2f}"
                   for n, r in table.items())),
        ("lag 0 +- 1 frame (every signal)", all(abs(v) <= 1 for v in lags), str(lags)),
        (">= 10 frames/s at 512x512 on one CPU thread", fps1 >= 10.0, f"{fps1:.1f}"),
    ]
    print("\ntargets (issue 14)")
    for text, ok, value in checks:
        print(f"  [{'met' if ok else 'NOT met'}] {text}: {value}")


if __name__ == "__main__":
    main()
