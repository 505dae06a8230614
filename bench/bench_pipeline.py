"""End-to-end CV-only planning latency: analyse + compare + plan + build_prompts, 1024x1024, one core.

Issue target: median <= 250 ms for a 1024x1024 sketch + reference, CV only, one core. A second
section embeds both images with an open_clip ViT-B-32-sized image tower (random weights:
open_clip.create_model("ViT-B-32", pretrained=None), no download; the compute is the same as the
trained model's) and reports the time it adds.

Images are fed as ComfyUI hands them to the nodes: float32 RGB in 0..1 (`--dtype uint8` feeds
the uint8 arrays a file loader gives instead). Run from the repository root:
    $PY bench/bench_pipeline.py [--runs 30] [--clip-runs 7] [--dtype float32|uint8] [--no-clip]
Run it on a quiet machine: other processes on the same core show up as a long p90 tail.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"  # before numpy / cv2 / torch create their thread pools

import argparse  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DATA = REPO / "tests" / "fixtures"

from agents.measure.imaging import load_image, to_rgb_float  # noqa: E402
from agents.measure.reference_compare import compare  # noqa: E402
from agents.measure.visual_analyst import analyse  # noqa: E402
from agents.planning.animation_director import plan  # noqa: E402
from agents.planning.prompt_engineer import build_prompts  # noqa: E402

TARGET_MS = 250.0
SIDE = 1024
STAGES = ("analyse", "compare", "plan", "prompts")


def _pin_one_core() -> str:
    cv2.setNumThreads(1)
    import torch

    torch.set_num_threads(1)
    if hasattr(os, "sched_setaffinity"):
        core = sorted(os.sched_getaffinity(0))[-1]
        os.sched_setaffinity(0, {core})
        return f"core {core}"
    return "no affinity call on this OS"


def _square(path: Path, dtype: str) -> np.ndarray:
    """The file as a SIDE x SIDE RGB image (cubic upscale / area downscale), in the requested dtype."""
    rgb = (to_rgb_float(load_image(path)) * 255.0 + 0.5).astype(np.uint8)
    h, w = rgb.shape[:2]
    interp = cv2.INTER_CUBIC if max(h, w) < SIDE else cv2.INTER_AREA
    sq = cv2.resize(rgb, (SIDE, SIDE), interpolation=interp)
    return sq if dtype == "uint8" else sq.astype(np.float32) / 255.0


def _pipeline(sketch: np.ndarray, reference: np.ndarray, embed: Callable[[np.ndarray], np.ndarray] | None = None
              ) -> dict[str, float]:
    """One planning request; returns milliseconds per stage (and per embedding when embed is given)."""
    t: dict[str, float] = {}
    t0 = time.perf_counter()
    kwargs = {}
    if embed is not None:
        es, er = embed(sketch), embed(reference)
        kwargs = {"sketch_embedding": es, "reference_embedding": er, "similarity_source": "open_clip"}
        t["embed"] = (time.perf_counter() - t0) * 1e3
    t1 = time.perf_counter()
    analysis = analyse(sketch, "sketch", text_tags="1girl, long hair, school uniform")
    t2 = time.perf_counter()
    report = compare(sketch, reference, **kwargs)
    t3 = time.perf_counter()
    p = plan(analysis, report)
    t4 = time.perf_counter()
    build_prompts(p, analysis)
    t5 = time.perf_counter()
    t.update({"analyse": (t2 - t1) * 1e3, "compare": (t3 - t2) * 1e3, "plan": (t4 - t3) * 1e3,
              "prompts": (t5 - t4) * 1e3, "total": (t5 - t0) * 1e3})
    return t


def _runs(n: int, fn: Callable[[], dict[str, float]]) -> dict[str, list[float]]:
    fn()  # warm-up: policy file parse, lazy imports, allocator
    out: dict[str, list[float]] = {}
    for _ in range(n):
        for k, v in fn().items():
            out.setdefault(k, []).append(v)
    return out


def _p(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[round(q * (len(s) - 1))]


def _row(name: str, xs: list[float]) -> str:
    return (f"  {name:<9} median {statistics.median(xs):8.1f} ms   p90 {_p(xs, 0.9):8.1f} ms"
            f"   min {min(xs):8.1f} ms")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=30, help="timed CV-only runs (at least 15)")
    ap.add_argument("--clip-runs", type=int, default=7, help="timed runs with the two ViT-B-32 embeddings")
    ap.add_argument("--dtype", choices=("float32", "uint8"), default="float32")
    ap.add_argument("--sketch", type=Path, default=DATA / "sketches" / "human_line.png")
    ap.add_argument("--reference", type=Path, default=DATA / "references" / "madoka.jpg")
    ap.add_argument("--no-clip", action="store_true", help="skip the open_clip section")
    args = ap.parse_args()
    if args.runs < 15:
        ap.error("--runs: at least 15 runs make a median worth reporting")
    where = _pin_one_core()
    sketch, reference = _square(args.sketch, args.dtype), _square(args.reference, args.dtype)
    print(f"sketch {args.sketch.name} + reference {args.reference.name}, both {SIDE}x{SIDE} RGB {args.dtype}")
    print(f"threads: cv2={cv2.getNumThreads()} OMP/OPENBLAS/MKL=1 torch=1, affinity {where}, "
          f"load average {os.getloadavg()[0]:.2f}")

    # Peak extra memory of one request, before torch models exist: numpy/cv2 arrays (tracemalloc sees
    # numpy's buffers, including cv2 outputs) and the growth of the process's maximum resident set.
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    _pipeline(sketch, reference)
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_growth = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024.0

    cv = _runs(args.runs, lambda: _pipeline(sketch, reference))
    med = statistics.median(cv["total"])
    print(f"\nCV-only planning, {args.runs} runs (one core):")
    for k in (*STAGES, "total"):
        print(_row(k, cv[k]))
    print(f"  target: median total <= {TARGET_MS:.0f} ms: {'OK' if med <= TARGET_MS else 'MISSED'}")
    print(f"  peak extra memory of one request: tracemalloc {traced_peak / 2**20:.1f} MB, "
          f"max-RSS growth {rss_growth:.1f} MB")

    if args.no_clip:
        return
    import open_clip
    import torch

    from agents.measure.embeddings import OpenClipImageEncoder

    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    model = open_clip.create_model("ViT-B-32", pretrained=None, device="cpu").eval()
    mean, std = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)
    enc = OpenClipImageEncoder(model=model, image_size=224, mean=mean, std=std)
    params = sum(p.numel() for p in model.visual.parameters()) / 1e6
    clip = _runs(args.clip_runs, lambda: _pipeline(sketch, reference, enc.embed))
    rss_clip = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss1) / 1024.0
    # The embed stage is the added work (compare() still computes the classical score); the difference
    # of the two medians is printed too, but it also carries any change in machine load between sections.
    added = statistics.median(clip["embed"])
    diff = statistics.median(clip["total"]) - med
    print(f"\nWith open_clip ViT-B-32 (random weights, image tower {params:.1f} M parameters, "
          f"torch threads {torch.get_num_threads()}), {args.clip_runs} runs:")
    for k in ("embed", *STAGES, "total"):
        print(_row(k, clip[k]))
    print(f"  added by embedding both images: median {added:.1f} ms (embed stage); "
          f"median totals differ by {diff:.1f} ms")
    print(f"  max-RSS growth from loading the model and embedding: {rss_clip:.1f} MB")


if __name__ == "__main__":
    main()
