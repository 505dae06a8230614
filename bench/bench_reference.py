"""Latency of Reference Compare for a 1024x1024 sketch + reference on one CPU thread.

CV-only: compare() with classical features. With open_clip: the added time of embedding both
images with a ViT-B-32-sized model with random weights (open_clip.create_model("ViT-B-32",
pretrained=None): no download). Run from the repository root: `python bench/bench_reference.py`.
"""

from __future__ import annotations

import os

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = "1"

import resource  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DATA = REPO / "tests" / "fixtures"

from agents.measure.embeddings import OpenClipImageEncoder  # noqa: E402
from agents.measure.imaging import load_image, to_rgb_float  # noqa: E402
from agents.measure.line_quality import score_line_art  # noqa: E402
from agents.measure.reference_compare import compare  # noqa: E402


def _square(path: Path, side: int = 1024) -> np.ndarray:
    return cv2.resize(to_rgb_float(load_image(path)), (side, side), interpolation=cv2.INTER_CUBIC).clip(0, 1)


def _median_ms(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000.0)
    return statistics.median(times)


def main() -> None:
    cv2.setNumThreads(1)
    import torch

    torch.set_num_threads(1)
    sketch = _square(DATA / "references" / "madoka_lineart.png")
    reference = _square(DATA / "references" / "madoka.jpg")
    cv_ms = _median_ms(lambda: compare(sketch, reference), 15)
    lq_ms = _median_ms(lambda: score_line_art(sketch), 15)
    print("Reference Compare, 1024x1024 sketch + reference, 1 thread")
    print(f"  compare() CV-only:            median {cv_ms:7.1f} ms (15 runs)")
    print(f"  score_line_art() 1024x1024:   median {lq_ms:7.1f} ms (15 runs)")

    import open_clip

    model = open_clip.create_model("ViT-B-32", pretrained=None, device="cpu").eval()
    enc = OpenClipImageEncoder(model=model, image_size=224, mean=(0.48145466, 0.4578275, 0.40821073),
                               std=(0.26862954, 0.26130258, 0.27577711))

    def with_clip() -> None:
        compare(sketch, reference, sketch_embedding=enc.embed(sketch), reference_embedding=enc.embed(reference),
                similarity_source="open_clip")

    clip_ms = _median_ms(with_clip, 7)
    print(f"  compare() + 2 ViT-B-32 embeds: median {clip_ms:7.1f} ms (7 runs), added {clip_ms - cv_ms:.1f} ms")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(f"  peak RSS of this process:     {rss:7.1f} MB (includes torch + the model)")


if __name__ == "__main__":
    main()
