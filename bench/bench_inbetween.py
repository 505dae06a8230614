"""Keyframe in-betweening benchmark: keep every k-th frame as a key, score the held-out frames.

Run from the repository root:  $PY bench/bench_inbetween.py [--quick]

Data with exact ground truth (bench/inbetween_figures.py):
- procedural: an articulated stick figure, non-linear motion (arc with ease-in/out, body rotation,
  an arm swinging across the torso, stepping legs), rendered frame by frame: favours no method.
- warped: the repository's fixture drawings moved by a known smooth non-rigid warp (rotation,
  drift, eased Gaussian bumps): the truth is itself a warp, which favours the flow methods.
Metrics on held-out frames: AnimeInbet chamfer distance (CD, x1e-3 of the diagonal), line F-score at
2 px, Hausdorff (px), ghost share (grey pixels among marked ones), Line Quality broken, key exactness
(max |key out - key in|), temporal jitter (mean |CD(out_t, out_t+1) - CD(truth_t, truth_t+1)|, x1e-3).
Baselines side by side in the same run: hold, cross-dissolve, plain-image DIS, plain-image Farneback.
Ours: flow and line-aware on the ink distance field. Speed: in-between frames/s at 512x512, one core.
Memory: tracemalloc peak of a long 1024x1024 request consumed chunk by chunk.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"  # before numpy / cv2 load their thread pools

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from agents.inbetween.imputer import impute, iter_chunks, prepare  # noqa: E402
from agents.inbetween.metrics import chamfer, f_score, grey_share, hausdorff, ink_field  # noqa: E402
from agents.measure.imaging import fit_within, load_image, to_rgb_float  # noqa: E402
from agents.measure.line_quality import score_line_art  # noqa: E402
from bench.inbetween_figures import figure_sequence, warped_sequence  # noqa: E402

# name -> (mode, flow_method, field, is_baseline)
METHODS: dict[str, tuple[str, str, str, bool]] = {
    "hold": ("hold", "dis", "distance", True),
    "dissolve": ("dissolve", "dis", "distance", True),
    "DIS (image)": ("flow", "dis", "image", True),
    "Farneback (image)": ("flow", "farneback", "image", True),
    "flow DIS (ink DT)": ("flow", "dis", "distance", False),
    "line-aware DIS": ("line_aware", "dis", "distance", False),
    "line-aware tone DIS": ("line_aware_tone", "dis", "distance", False),
}
OURS = ("line-aware DIS", "line-aware tone DIS")
FIXTURES = ("house_line.png", "user_1.png", "human_line.png")
CD_GAIN_TARGET = 0.30
FPS_TARGET = 8.0


def warped_sets(size: int, n: int) -> list[list[np.ndarray]]:
    out = []
    for i, name in enumerate(FIXTURES):
        rgb, _ = fit_within(to_rgb_float(load_image(REPO / "tests" / "fixtures" / "sketches" / name)), size)
        canvas = np.ones((size, size, 3), np.float32)
        h, w = rgb.shape[:2]
        canvas[(size - h) // 2:(size - h) // 2 + h, (size - w) // 2:(size - w) // 2 + w] = rgb
        out.append(warped_sequence(canvas, n, seed=i))
    return out


def score(truth: list[np.ndarray], tf: list, k: int, method: str, quality_every: int) -> dict[str, float]:
    mode, fm, fld, _ = METHODS[method]
    n = len(truth)
    idx = list(range(0, n, k))
    keys = [truth[i] for i in idx]
    out = impute(prepare(keys, idx, n, mode, flow_method=fm, field=fld))
    held = [i for i in range(n) if i not in idx]
    of = [tf[i] if i in idx else ink_field(out[i]) for i in range(n)]  # keys are exact (checked below)
    cd = [chamfer(of[i], tf[i]) for i in held]
    jitter = [abs(chamfer(of[i], of[i + 1]) - chamfer(tf[i], tf[i + 1])) for i in range(n - 1)]
    broken = [score_line_art(out[i]).broken for i in held[::quality_every]]
    return {
        "cd": float(np.mean(cd)) * 1e3,
        "f2": float(np.mean([f_score(of[i], tf[i], 2.0) for i in held])),
        "hd": float(np.mean([hausdorff(of[i], tf[i]) for i in held])),
        "ghost": float(np.mean([grey_share(cv2.cvtColor(out[i], cv2.COLOR_RGB2GRAY), 1.0, 0.0, 0.2, 0.8)
                                for i in held])),
        "broken": float(np.mean(broken)),
        "key_err": float(max(np.abs(out[i] - truth[i]).max() for i in idx)),
        "jitter": float(np.mean(jitter)) * 1e3,
    }


def table(name: str, seqs: list[list[np.ndarray]], ks: tuple[int, ...], quality_every: int) -> dict:
    results: dict[int, dict[str, dict[str, float]]] = {}
    fields = [[ink_field(f) for f in s] for s in seqs]  # the truth's ink fields, once per sequence
    print(f"\n== {name} set: {len(seqs)} sequence(s) of {len(seqs[0])} frames at {seqs[0][0].shape[1]} px ==")
    for k in ks:
        results[k] = {}
        print(f"-- keys every {k} frames --")
        print(f"{'method':<29}{'CD e-3':>8}{'F@2px':>8}{'HD px':>8}{'ghost':>8}{'broken':>8}{'key err':>9}"
              f"{'jitter':>8}")
        for method in METHODS:
            rows = [score(s, tf, k, method, quality_every) for s, tf in zip(seqs, fields, strict=True)]
            avg = {m: float(np.mean([r[m] for r in rows])) for m in rows[0]}
            avg["key_err"] = max(r["key_err"] for r in rows)
            results[k][method] = avg
            tag = " (baseline)" if METHODS[method][3] else ""
            print(f"{method + tag:<29}{avg['cd']:>8.3f}{avg['f2']:>8.3f}{avg['hd']:>8.1f}{avg['ghost']:>8.3f}"
                  f"{avg['broken']:>8.3f}{avg['key_err']:>9.1g}{avg['jitter']:>8.3f}")
    return results


def speed(size: int, frames: int, mode: str) -> float:
    cv2.setNumThreads(1)
    seq = figure_sequence(frames, size)
    idx = [0, frames // 2, frames - 1]
    req = prepare([seq[i] for i in idx], idx, frames, mode)
    t0 = time.perf_counter()
    for _ in iter_chunks(req):
        pass
    return (frames - len(idx)) / (time.perf_counter() - t0)


def memory(size: int, frames: int, mode: str) -> tuple[float, float]:
    """Peak traced bytes while a long request streams, in frames' worth of float32 RGB."""
    seq = [figure_sequence(2, size)[0], figure_sequence(2, size)[1]]
    req = prepare(seq, [0, frames - 1], frames, mode)
    tracemalloc.start()
    t0 = time.perf_counter()
    for _ in iter_chunks(req):
        pass
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / (size * size * 3 * 4), time.perf_counter() - t0


def verdicts(proc: dict, warp: dict, ks_target: tuple[int, ...]) -> None:
    print("\n== targets ==")
    for ours in OURS:
        for k in ks_target:
            if k not in proc:
                continue
            base = min((m for m in METHODS if METHODS[m][3]), key=lambda m: proc[k][m]["cd"])
            gain = 1.0 - proc[k][ours]["cd"] / proc[k][base]["cd"]
            ok = "MET" if gain >= CD_GAIN_TARGET else "NOT MET"
            print(f"procedural k={k}: {ours} CD {proc[k][ours]['cd']:.3f} vs best baseline {base} "
                  f"{proc[k][base]['cd']:.3f}: {100 * gain:.0f}% lower (target >= {100 * CD_GAIN_TARGET:.0f}%) {ok}")
        for k in warp:
            base = min((m for m in METHODS if METHODS[m][3]), key=lambda m: warp[k][m]["cd"])
            lower = warp[k][ours]["cd"] < warp[k][base]["cd"]
            print(f"warped k={k}: {ours} CD {warp[k][ours]['cd']:.3f} vs best baseline {base} "
                  f"{warp[k][base]['cd']:.3f}: {'lower MET' if lower else 'not lower: NOT MET'}")
    exact = all(r["key_err"] == 0.0 for t in (proc, warp) for k in t for r in t[k].values())
    print(f"keys exact in every run: {'MET' if exact else 'NOT MET'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="256 px, 17 frames, k = 4 and 8, fewer Line Quality checks")
    args = ap.parse_args()
    size, n, ks = (256, 17, (4, 8)) if args.quick else (512, 33, (2, 4, 8))  # the warped set: 17 frames
    quality_every = 8  # Line Quality's broken score on every 8th held-out frame (it is the slow metric)
    t0 = time.perf_counter()
    proc = table("procedural", [figure_sequence(n, size)], ks, quality_every)
    warp = table("warped", warped_sets(size, 17), ks, quality_every)
    verdicts(proc, warp, (4, 8))
    for mode in ("line_aware", "line_aware_tone"):
        fps = speed(512, 17 if args.quick else 33, mode)
        print(f"speed: {fps:.1f} {mode} in-between frames/s at 512x512 on one core "
              f"(target >= {FPS_TARGET:g}) {'MET' if fps >= FPS_TARGET else 'NOT MET'}")
    mem_frames, mem_len = (60, 512) if args.quick else (300, 1024)
    for mode in ("dissolve", "line_aware"):
        length = mem_frames if mode == "dissolve" else min(mem_frames, 24)
        peak, secs = memory(mem_len, length, mode)
        print(f"memory: {mode} {length} frames at {mem_len}x{mem_len}: traced peak {peak:.1f} frames' floats "
              f"({secs:.1f} s; chunk of 8 frames + one gap's flows)")
    print(f"total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
