"""Visual Analyst latency and peak extra memory for a 1024x1024 sketch on ONE core (CV only).

Run from the repository root:  $PY bench/bench_visual_analyst.py [--runs N] [--image PATH]
Targets (DESIGN / issue): median <= 150 ms, peak extra memory <= 200 MB.
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
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import cv2  # noqa: E402

from agents.measure.imaging import load_image  # noqa: E402
from agents.measure.visual_analyst import analyse  # noqa: E402

DEFAULT_IMAGE = REPO / "tests" / "fixtures" / "sketches" / "human_line.png"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--image", type=Path, default=DEFAULT_IMAGE)
    args = ap.parse_args()
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

    times = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        analyse(img, "bench")
        times.append(time.perf_counter() - t0)
    times_ms = sorted(1000.0 * t for t in times)
    median = statistics.median(times_ms)
    p90 = times_ms[int(0.9 * (len(times_ms) - 1))]
    print(f"image: {args.image.name} resized to 1024x1024 RGB{'A' if img.shape[2] == 4 else ''} uint8")
    print(f"threads: cv2={cv2.getNumThreads()} OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}")
    print(f"result: {first.line_quality} lq={first.line_quality_score:.3f} objects={first.object_count}")
    print(f"latency over {args.runs} runs: median {median:.1f} ms, p90 {p90:.1f} ms, min {times_ms[0]:.1f} ms"
          f"  (target <= 150 ms: {'OK' if median <= 150 else 'MISSED'})")
    peak_mb = peak_traced / 2**20
    rss_mb = (rss_after_kb - rss_before_kb) / 1024.0
    print(f"peak extra memory: tracemalloc {peak_mb:.1f} MB, max-RSS growth {rss_mb:.1f} MB"
          f"  (target <= 200 MB: {'OK' if max(peak_mb, rss_mb) <= 200 else 'MISSED'})")


if __name__ == "__main__":
    main()
