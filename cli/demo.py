"""The main job as it stands: analyse sketch + reference and plan, through a real headless ComfyUI.

Every pair runs as one API workflow on the server (LoadImage -> Visual Analyst, Reference Compare
-> Animation Director -> Prompt Engineer); the nodes' reports come back through /history and are
written as plan.json + report.html per pair, with a summary on the terminal.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"
DEFAULT_REFERENCE = FIXTURES / "references" / "madoka_lineart.png"


class DemoInputError(SystemExit):
    pass


def _check_image(path: Path, role: str) -> Path:
    from agents.imaging import ImageInputError, load_image

    try:
        load_image(path)
    except ImageInputError as exc:
        raise DemoInputError(f"error: --{role}: {exc}") from None
    return path.resolve()


def resolve_pairs(sketches: list[str] | None, reference: str | None,
                  no_reference: bool) -> list[tuple[Path, Path | None]]:
    if sketches:
        sketch_paths = [Path(s) for s in sketches]
    else:
        sketch_paths = sorted((FIXTURES / "sketches").glob("*.png"))
    ref = None if no_reference else Path(reference) if reference else DEFAULT_REFERENCE
    ref_checked = _check_image(ref, "reference") if ref is not None else None
    return [(_check_image(s, "sketch"), ref_checked) for s in sketch_paths]


def build_workflow(sketch_name: str, reference_name: str | None, tags: str) -> dict[str, Any]:
    """The planning graph in API format. Ids are local to this graph."""
    wf: dict[str, Any] = {
        "sketch": {"class_type": "LoadImage", "inputs": {"image": sketch_name}},
        "analyst": {"class_type": "M4VisualAnalyst", "inputs": {"image": ["sketch", 0], "subject_tags": tags}},
        "compare": {"class_type": "M4ReferenceCompare", "inputs": {"sketch": ["sketch", 0]}},
        "director": {"class_type": "M4AnimationDirector",
                     "inputs": {"analysis": ["analyst", 0], "reference_report": ["compare", 0]}},
        "prompts": {"class_type": "M4PromptEngineer",
                    "inputs": {"plan": ["director", 0], "analysis": ["analyst", 0], "subject_tags": tags}},
    }
    if reference_name is not None:
        wf["reference"] = {"class_type": "LoadImage", "inputs": {"image": reference_name}}
        wf["compare"]["inputs"]["reference"] = ["reference", 0]
    return wf


def panels(history: dict[str, Any], node: str) -> list[dict[str, Any]]:
    return list(history.get("outputs", {}).get(node, {}).get("m4_panel", []))


def collect(history: dict[str, Any]) -> dict[str, Any]:
    """The four reports of one run, from the nodes' ui payloads in /history."""
    def first(node: str, kind: str) -> dict[str, Any]:
        for p in panels(history, node):
            if p.get("kind") == kind:
                return p.get("data", {})
        raise RuntimeError(f"node '{node}' returned no '{kind}' report; outputs: {sorted(history.get('outputs', {}))}")

    return {
        "analysis": first("analyst", "analysis"),
        "reference": first("compare", "reference"),
        "plan": first("director", "plan"),
        "prompts": first("prompts", "prompts"),
    }


def _summary_row(name: str, result: dict[str, Any]) -> str:
    a, r, p = result["analysis"], result["reference"], result["plan"]
    from cli.report import find_signals

    sig = find_signals(p)
    sig_txt = " ".join(f"{k}={v:.2f}" for k, v in sig.items())
    return (f"{name:<18} {a.get('line_quality', '?'):<10} objects={a.get('object_count', '?'):<3} "
            f"case={p.get('case', '?'):<15} sim={r.get('similarity', 0):.2f} CR={'y' if r.get('colored') else 'n'} "
            f"{sig_txt}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="./m4 demo", description=__doc__.splitlines()[0])
    parser.add_argument("--sketch", action="append", help="sketch image (repeatable); default: the bundled sketches")
    parser.add_argument("--reference", help="style reference image; default: the bundled madoka_lineart.png")
    parser.add_argument("--no-reference", action="store_true", help="plan without a reference (R = 0)")
    parser.add_argument("--tags", default="", help="subject tags for the prompts, comma separated")
    parser.add_argument("--out", default="m4-output", help="output folder (default: ./m4-output)")
    args = parser.parse_args(argv)

    try:
        pairs = resolve_pairs(args.sketch, args.reference, args.no_reference)
    except DemoInputError as exc:
        print(exc, file=sys.stderr)
        return 2
    out_root = Path(args.out).resolve()
    out_root.mkdir(parents=True, exist_ok=True)

    from cli.local_comfy import LocalComfy
    from cli.report import write_report

    print(f"[m4] {len(pairs)} sketch(es) -> {out_root}")
    t0 = time.monotonic()
    print("[m4] starting a headless ComfyUI (CPU) with this pack loaded ...", flush=True)
    rows = []
    with LocalComfy(with_checkpoint=False) as server:
        print(f"[m4] ComfyUI {server.version} ready at {server.url} in {time.monotonic() - t0:.1f} s", flush=True)
        ref_name = server.upload_image(pairs[0][1]) if pairs[0][1] is not None else None
        for i, (sketch, reference) in enumerate(pairs, 1):
            label = f"[{i}/{len(pairs)}] {sketch.name}"
            print(f"{label}: uploading and queueing", flush=True)
            wf = build_workflow(server.upload_image(sketch), ref_name, args.tags)

            def progress(event: dict[str, Any], label: str = label) -> None:
                if event.get("type") == "executing" and event.get("node"):
                    print(f"{label}:   running {event.get('class_type') or event['node']}", flush=True)

            started = time.monotonic()
            history = server.run(wf, timeout=300, progress=progress)
            result = collect(history)
            result["inputs"] = {"sketch": str(sketch), "reference": str(reference) if reference else None}
            title = f"{sketch.name} + {reference.name if reference else 'no reference'}"
            report = write_report(out_root / sketch.stem, title=title, sketch=sketch, reference=reference,
                                  result=result, comfy_version=server.version)
            elapsed = time.monotonic() - started
            print(f"{label}: done in {elapsed:.1f} s -> {report.relative_to(out_root.parent)}", flush=True)
            rows.append(_summary_row(sketch.stem, result))
    print("\n" + "\n".join(rows))
    print(f"\n[m4] {len(pairs)} plan(s) written under {out_root} in {time.monotonic() - t0:.1f} s")
    return 0
