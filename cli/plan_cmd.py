"""`./m4 plan`: analyse, compare and plan sketches with the agents alone (no ComfyUI server, nothing generated).

Per sketch it writes <out>/<sketch stem>/plan.json (analysis, reference report, plan, prompts) and a
readable report.html beside it.
"""

from __future__ import annotations

import argparse
import functools
import time
from pathlib import Path
from typing import Any

from cli.inputs import add_pair_arguments, pairs_from_args, read_image

REPO = Path(__file__).resolve().parents[1]
PLANNED_BY = "the M4 agents in this process (no ComfyUI server)"


def _reference_measures(path: Path) -> Any:
    """The reference measured once for all the sketches of one command (compare() takes the measures);
    a file changed in between (size or modification time) is measured again."""
    stat = path.stat() if path.is_file() else None
    return _measures_of(path, None if stat is None else (stat.st_mtime_ns, stat.st_size))


@functools.lru_cache(maxsize=8)
def _measures_of(path: Path, _stamp: tuple[int, int] | None) -> Any:
    from agents.measure.reference_compare import measure_image

    return measure_image(read_image(path, "reference"), "reference")


def plan_pair(sketch: Path, reference: Path | None, tags: str = "") -> dict[str, Any]:
    """The four reports of one pair, shaped like the nodes' panels: analysis, reference, plan (with prompts), prompts.

    Runs the same agents the M4 nodes call, in this process; raises InputError for unreadable images.
    """
    from agents.measure.reference_compare import compare
    from agents.measure.visual_analyst import analyse
    from agents.planning.animation_director import plan as make_plan
    from agents.planning.prompt_engineer import build_prompts, parse_tags

    sketch_img = read_image(Path(sketch), "sketch")
    measured = _reference_measures(Path(reference)) if reference is not None else None
    analysis = analyse(sketch_img, Path(sketch).name, text_tags=tags or None)
    report = compare(sketch_img, measured, sketch_tags=tags or None)
    planned = make_plan(analysis, report)
    prompts = build_prompts(planned, analysis, parse_tags(tags) if tags else None)
    return {
        "analysis": analysis.to_dict(),
        "reference": report.to_dict(),
        "plan": planned.with_prompts(prompts.prompts()).to_dict(),
        "prompts": prompts.to_dict(),
        "inputs": {"sketch": str(Path(sketch).resolve()),
                   "reference": str(Path(reference).resolve()) if reference is not None else None},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="./m4 plan", description=__doc__.splitlines()[0])
    add_pair_arguments(parser)
    args = parser.parse_args(argv)
    pairs = pairs_from_args(args)
    if pairs is None:
        return 2

    from cli.report import write_report

    out_root = Path(args.out).resolve()
    print(f"[m4 plan] {len(pairs)} sketch(es) -> {out_root} (agents only: no server, no images generated)")
    t0 = time.monotonic()
    for i, (sketch, reference) in enumerate(pairs, 1):
        started = time.monotonic()
        result = plan_pair(sketch, reference, args.tags)
        title = f"{sketch.name} + {reference.name if reference else 'no reference'}"
        report = write_report(out_root / sketch.stem, title=title, sketch=sketch, reference=reference,
                              result=result, comfy_version="", planned_by=PLANNED_BY)
        p = result["plan"]
        print(f"[{i}/{len(pairs)}] {sketch.name}: case={p['case']} cfg1={p['cfg1']} cfg2={p['cfg2']} "
              f"denoise2={p['denoise2']} in {time.monotonic() - started:.2f} s -> {report}", flush=True)
        for warning in p["diagnostics"].get("warnings", []):
            print(f"[{i}/{len(pairs)}] {sketch.name}: warning: {warning}", flush=True)
    print(f"[m4 plan] {len(pairs)} plan(s) in {time.monotonic() - t0:.1f} s")
    return 0
