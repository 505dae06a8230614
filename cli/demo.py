"""The main job end to end: analyse sketch + reference, plan, and run the locked M4 template, through a
real headless ComfyUI.

Every pair runs as one API workflow on the server (agents.runtime.apply_plan.planning_graph: LoadImage
-> Visual Analyst, Reference Compare -> Animation Director -> Prompt Engineer); the reports come back
through /history (planning_reports). The plan is then applied to the static locked template
(agents.runtime.apply_plan) and the template runs on the same server with RANDOM-WEIGHT STAND-IN models
(cli.template_run), its stage-1 and final images saved beside plan.json + report.html per pair.
--plan-only stops after planning.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from cli.inputs import add_pair_arguments, pairs_from_args

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = REPO / "workflows" / "api" / "Animation_Workflow_M4_Api.json"
# Contract stand-ins for IPAdapter_plus / controlnet_aux nodes (no weights here); see their docstring.
STANDIN_NODES = REPO / "tests" / "host" / "standins"
STANDIN_NODES_FOLDER = "m4_test_standins"
STANDIN_BANNER = ("[m4] NOTE: the template runs on RANDOM-WEIGHT STAND-IN models (checkpoint, ControlNet) and "
                  "pass-through IP-Adapter/OpenPose stand-ins: the images prove the graph runs with the plan, "
                  "they are noise, not line art. Real models: see the README.")


def _summary_row(name: str, result: dict[str, Any]) -> str:
    a, r, p = result["analysis"], result["reference"], result["plan"]
    from cli.report import find_signals

    sig = find_signals(p)
    sig_txt = " ".join(f"{k}={v:.2f}" for k, v in sig.items())
    return (f"{name:<18} {a.get('line_quality', '?'):<10} objects={a.get('object_count', '?'):<3} "
            f"case={p.get('case', '?'):<15} sim={r.get('similarity', 0):.2f} CR={'y' if r.get('colored') else 'n'} "
            f"{sig_txt}")


def run_locked_template(server: Any, result: dict[str, Any], sketch_name: str, reference_name: str,
                        out_dir: Path, label: str) -> dict[str, Any]:
    """Apply the plan to the static template, swap in the stand-in models and run it; a summary for plan.json."""
    from agents.planning.plan_types import Plan
    from agents.runtime.apply_plan import apply_plan, load_template, set_load_images
    from cli.template_run import stage_printer, swap_in_standins

    plan = Plan.from_dict(result["plan"]).with_prompts(result["prompts"])
    applied = set_load_images(apply_plan(load_template(TEMPLATE), plan), sketch=sketch_name,
                              reference=reference_name)
    swap = swap_in_standins(applied, checkpoint=server.checkpoint, controlnet=server.controlnet)
    from agents.policy import default_policy

    # the samplers, named by their role in the policy's driver map
    stage = {node_id: d.role for node_id, d in default_policy().nodes.items() if d.class_type == "KSampler"}

    def say(text: str) -> None:
        print(f"{label}:   {text}", flush=True)

    printer = stage_printer(swap.workflow, say)

    def progress(event: dict[str, Any]) -> None:
        # node starts for every node; sampler steps only at the last step, to keep the log short
        if event["type"] == "progress" and event["value"] != event["max"]:
            return
        if event["type"] == "executing" and event["node"] in stage:
            say(f"== {stage[event['node']]} ==")
        printer(event)  # type: ignore[arg-type]

    from cli.template_run import run_template

    run = run_template(server, swap.workflow, out_dir, progress=progress, timeout=300)
    return {
        "notice": swap.notice,
        "template": TEMPLATE.name,
        "seconds": round(run.seconds, 2),
        "images": {stage_name: path.name for stage_name, path in run.images.items()},
        "standin_changes": [list(change) for change in swap.changes],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="./m4 demo", description=__doc__.splitlines()[0])
    add_pair_arguments(parser)
    parser.add_argument("--plan-only", action="store_true",
                        help="plan only; do not run the locked template on the stand-in models")
    args = parser.parse_args(argv)

    pairs = pairs_from_args(args)
    if pairs is None:
        return 2
    out_root = Path(args.out).resolve()
    out_root.mkdir(parents=True, exist_ok=True)

    from agents.runtime.apply_plan import planning_graph, planning_reports
    from cli.local_comfy import LocalComfy
    from cli.report import write_report
    from cli.run_cmd import missing_node_types

    run_template = not args.plan_only
    print(f"[m4] {len(pairs)} sketch(es) -> {out_root}")
    if run_template:
        print(STANDIN_BANNER, flush=True)
    t0 = time.monotonic()
    print("[m4] starting a headless ComfyUI (CPU) with this pack loaded ...", flush=True)
    rows = []
    extra = {STANDIN_NODES_FOLDER: STANDIN_NODES} if run_template and (STANDIN_NODES / "__init__.py").is_file() else {}
    ran = 0
    # One torch thread: this process and the server share the cores, and the stand-ins are tiny.
    with LocalComfy(with_checkpoint=run_template, extra_custom_nodes=extra, threads=1) as server:
        print(f"[m4] ComfyUI {server.version} ready at {server.url} in {time.monotonic() - t0:.1f} s", flush=True)
        skip_reason = None
        if run_template:
            missing = missing_node_types(server.object_info(), TEMPLATE)
            if missing:
                skip_reason = f"the server lacks node type(s) {missing} (install the node packs the template uses)"
                print(f"[m4] template runs skipped: {skip_reason}", flush=True)
        ref_name = server.upload_image(pairs[0][1]) if pairs[0][1] is not None else None
        for i, (sketch, reference) in enumerate(pairs, 1):
            label = f"[{i}/{len(pairs)}] {sketch.name}"
            print(f"{label}: uploading and queueing", flush=True)
            sketch_name = server.upload_image(sketch)
            wf = planning_graph(sketch=sketch_name, reference=ref_name, tags=args.tags)

            def progress(event: dict[str, Any], label: str = label) -> None:
                if event.get("type") == "executing" and event.get("node"):
                    print(f"{label}:   running {event.get('class_type') or event['node']}", flush=True)

            started = time.monotonic()
            history = server.run(wf, timeout=300, progress=progress)
            result: dict[str, Any] = planning_reports(history)
            result["inputs"] = {"sketch": str(sketch), "reference": str(reference) if reference else None}
            print(f"{label}: planned in {time.monotonic() - started:.1f} s", flush=True)
            run, skipped = None, skip_reason
            if run_template and skipped is None and ref_name is None:
                skipped = "the locked template needs a style reference (--no-reference was given)"
            if run_template and skipped is None:
                print(f"{label}: running the locked M4 template (stand-in models)", flush=True)
                run = run_locked_template(server, result, sketch_name, ref_name, out_root / sketch.stem, label)
                result["template_run"] = run
                ran += 1
                print(f"{label}: template ran in {run['seconds']:.1f} s -> "
                      + ", ".join(f"{k}: {sketch.stem}/{v}" for k, v in run["images"].items()), flush=True)
            elif run_template:
                print(f"{label}: template not run: {skipped}", flush=True)
            title = f"{sketch.name} + {reference.name if reference else 'no reference'}"
            report = write_report(out_root / sketch.stem, title=title, sketch=sketch, reference=reference,
                                  result=result, comfy_version=server.version, run=run,
                                  skipped=skipped if run_template else None)
            elapsed = time.monotonic() - started
            print(f"{label}: done in {elapsed:.1f} s -> {report.relative_to(out_root.parent)}", flush=True)
            rows.append(_summary_row(sketch.stem, result))
    print("\n" + "\n".join(rows))
    print(f"\n[m4] {len(pairs)} plan(s) written under {out_root}"
          + (f", {ran} template run(s) on STAND-IN models" if run_template else "")
          + f" in {time.monotonic() - t0:.1f} s")
    if run_template and ran:
        print("[m4] the stage1.png / final.png images come from random-weight stand-in models, not a real checkpoint")
    return 0
