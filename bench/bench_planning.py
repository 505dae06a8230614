"""Planning latency: Animation Director plan + Prompt Engineer prompts on one core (no image work).

Run from the repository root: `python bench/bench_planning.py`. Prints the median and p95 per request.
The image analysis (Visual Analyst, Reference Compare) is benchmarked in its own script.
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agents.measure.analysis_types import ReferenceReport, VisualAnalysis  # noqa: E402
from agents.planning.animation_director import plan  # noqa: E402
from agents.planning.prompt_engineer import build_prompts  # noqa: E402


def _inputs(rng: random.Random) -> tuple[VisualAnalysis, ReferenceReport]:
    a = VisualAnalysis(
        image_name="bench", empty=False, line_quality="structured", line_quality_score=rng.random(),
        construction_lines=rng.random(), broken_lines=rng.random(), stroke_width_consistency=rng.random(),
        complexity="simple", complexity_score=rng.random(), object_count=rng.randint(1, 3),
        subject_scale=rng.random(), anatomy_risk="low", anatomy_risk_score=rng.random(), anatomy_source="structure",
        subject_tags=["1girl", "long hair", "school uniform", "smile", "backpack"],
    )
    r = ReferenceReport(
        present=True, reason="", similarity=rng.random(), similarity_source="classical", text_conflict=0.0,
        image_conflict=0.0, conflict_penalty=rng.random(), style_distance=rng.random(), colored=rng.random() < 0.3,
        saturation=0.0, accessory_conflict=rng.random(), reference_final_score=0.0,
    )
    return a, r


def main(n: int = 2000) -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    rng = random.Random(0)
    cases = [_inputs(rng) for _ in range(n)]
    for a, r in cases[:50]:  # warm-up (policy parse, imports)
        build_prompts(plan(a, r), a)
    plan_t, total_t = [], []
    for a, r in cases:
        t0 = time.perf_counter()
        p = plan(a, r)
        t1 = time.perf_counter()
        build_prompts(p, a)
        t2 = time.perf_counter()
        plan_t.append(t1 - t0)
        total_t.append(t2 - t0)

    def us(xs: list[float], q: float) -> float:
        return sorted(xs)[int(q * (len(xs) - 1))] * 1e6

    print(f"requests: {n} (one core)")
    print(f"plan only       median {statistics.median(plan_t) * 1e6:8.1f} us   p95 {us(plan_t, 0.95):8.1f} us")
    print(f"plan + prompts  median {statistics.median(total_t) * 1e6:8.1f} us   p95 {us(total_t, 0.95):8.1f} us")


if __name__ == "__main__":
    main()
