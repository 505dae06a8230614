"""`./m4 plan`: analyse, compare and plan sketches with the agents alone (no ComfyUI server, nothing generated).

Per sketch it writes <out>/<sketch stem>/plan.json (analysis, reference report, plan, prompts) and a
readable report.html beside it.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from cli.inputs import InputError, add_pair_arguments, pairs_from_args, read_image

REPO = Path(__file__).resolve().parents[1]
PLANNED_BY = "the M4 agents in this process (no ComfyUI server)"


def plan_pair(sketch: Path, reference: Path | None, tags: str = "", policy: Any = None,
              policy_note: dict[str, Any] | None = None) -> dict[str, Any]:
    """The four reports of one pair, shaped like the nodes' panels: analysis, reference, plan (with prompts), prompts.

    The planning chain the M4 nodes are made of (agents.planning.chain), in this process; the reference is
    measured once per content for all the sketches of a command. Raises InputError for unreadable images.
    """
    from agents.measure.imaging import ImageInputError
    from agents.measure.reference_cache import reference_measures
    from agents.planning.chain import plan_pair as plan_chain

    sketch_img = read_image(Path(sketch), "sketch")
    try:
        measured = reference_measures(Path(reference)) if reference is not None else None
    except ImageInputError as exc:
        raise InputError(f"--reference: {exc}") from None
    planned = plan_chain(sketch_img, measured, name=Path(sketch).name, tags=tags, policy=policy)
    if policy_note is not None:  # which calibrated overlay (if any) planned: cli/overlay_hook.py
        planned.plan.diagnostics["policy_overlay"] = policy_note
    result: dict[str, Any] = planned.reports()
    result["inputs"] = {"sketch": str(Path(sketch).resolve()),
                        "reference": str(Path(reference).resolve()) if reference is not None else None}
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="./m4 plan", description=__doc__.splitlines()[0])
    add_pair_arguments(parser)
    from cli.overlay_hook import add_overlay_arguments, resolve_policy

    add_overlay_arguments(parser)
    parser.add_argument("--log", default=None, help="run log whose folder holds the default overlay "
                                                    "(default: $M4_RUN_LOG or ./m4-output/m4_runs.sqlite3)")
    args = parser.parse_args(argv)
    pairs = pairs_from_args(args)
    if pairs is None:
        return 2

    from cli.report import write_report

    out_root = Path(args.out).resolve()
    print(f"[m4 plan] {len(pairs)} sketch(es) -> {out_root} (agents only: no server, no images generated)")
    t0 = time.monotonic()
    from cli.runs_cmd import DEFAULT_LOG

    policy, policy_note = resolve_policy(args, args.log or DEFAULT_LOG, "m4 plan")
    for i, (sketch, reference) in enumerate(pairs, 1):
        started = time.monotonic()
        result = plan_pair(sketch, reference, args.tags, policy, policy_note)
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
