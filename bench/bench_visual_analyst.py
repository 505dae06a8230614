"""Visual Analyst latency and peak extra memory for a 1024x1024 sketch on ONE core (CV only).

Run from the repository root:  $PY bench/bench_visual_analyst.py [--runs N] [--image PATH] [--quick]
Targets (DESIGN / issues): median <= 60 ms, peak extra memory <= 200 MB. Side by side in the same
run, interleaved: the same analysis with the rough-pencil measures (stroke_signals.rough_stats)
replaced by a stub that measures nothing, i.e. what they cost. Wall-clock and CPU time are both
printed: on a loaded machine only CPU time is comparable between runs.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"  # before numpy / cv2 / torch load their thread pools

import argparse  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402
from collections.abc import Callable  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from agents.measure import strokes  # noqa: E402
from agents.measure.imaging import load_image  # noqa: E402
from agents.measure.stroke_signals import RoughStats  # noqa: E402
from agents.measure.visual_analyst import analyse  # noqa: E402

TARGET_MS = 60.0


def _no_rough(*args: Any) -> RoughStats:
    ends = args[7]
    return RoughStats(overdrawn_px=0, grain=0.0, darkness=1.0, solid_share=0.0, hatched_px=0, hatch_segments=0,
                      wobble_px=0.0, tapered_ends=np.zeros(len(ends), bool))


@contextmanager
def _stubbed(on: bool) -> Any:
    real: Callable[..., RoughStats] = strokes.rough_stats
    if on:
        strokes.rough_stats = _no_rough  # type: ignore[assignment]
    try:
        yield
    finally:
        strokes.rough_stats = real  # type: ignore[assignment]


def _time(img: np.ndarray, stub: bool) -> tuple[float, float]:
    with _stubbed(stub):
        c, w = time.process_time(), time.perf_counter()
        analyse(img, "bench")
        return 1000.0 * (time.perf_counter() - w), 1000.0 * (time.process_time() - c)

DEFAULT_IMAGE = REPO / "tests" / "fixtures" / "sketches" / "human_line.png"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--image", type=Path, default=DEFAULT_IMAGE)
    ap.add_argument("--quick", action="store_true", help="10 runs")
    args = ap.parse_args()
    if args.quick:
        args.runs = 10
    cv2.setNumThreads(1)
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass

    img = cv2.resize(load_image(args.image), (1024, 1024), interpolation=cv2.INTER_CUBIC)
    rss_before_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    first = analyse(img, "bench")
    _, peak_traced = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_after_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    runs: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
    for _ in range(args.runs):
        for stub in (False, True):  # interleaved, so load changes hit both alike
            runs[stub].append(_time(img, stub))
    times_ms = sorted(w for w, _ in runs[False])
    median = statistics.median(times_ms)
    p90 = times_ms[int(0.9 * (len(times_ms) - 1))]
    cpu = statistics.median(c for _, c in runs[False])
    base_wall = statistics.median(w for w, _ in runs[True])
    base_cpu = statistics.median(c for _, c in runs[True])
    print(f"image: {args.image.name} resized to 1024x1024 RGB{'A' if img.shape[2] == 4 else ''} uint8")
    print(f"threads: cv2={cv2.getNumThreads()} OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}")
    print(f"result: {first.line_quality} lq={first.line_quality_score:.3f} objects={first.object_count}")
    print(f"latency over {args.runs} runs: median {median:.1f} ms, p90 {p90:.1f} ms, min {times_ms[0]:.1f} ms"
          f"  (target <= {TARGET_MS:g} ms: {'OK' if median <= TARGET_MS else 'MISSED'})")
    print(f"CPU time median {cpu:.1f} ms;  baseline without the rough-pencil measures: wall median "
          f"{base_wall:.1f} ms, CPU {base_cpu:.1f} ms  (they cost {cpu - base_cpu:+.1f} ms CPU)")
    peak_mb = peak_traced / 2**20
    rss_mb = (rss_after_kb - rss_before_kb) / 1024.0
    print(f"peak extra memory: tracemalloc {peak_mb:.1f} MB, max-RSS growth {rss_mb:.1f} MB"
          f"  (target <= 200 MB: {'OK' if max(peak_mb, rss_mb) <= 200 else 'MISSED'})")


if __name__ == "__main__":
    main()
