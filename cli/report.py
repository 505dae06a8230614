"""The readable per-pair report: plan.json, a signals chart and report.html (from a template file).

write_report serves the demo and `./m4 plan`; write_run_report adds what a run produced (`./m4 run` /
`./m4 batch`): the images of every attempt with its Line Quality verdict, and a schedule chart per
attempt when the adaptive template reported its per-step CFG.
"""

from __future__ import annotations

import html
import json
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path
from string import Template
from typing import Any

TEMPLATE = Path(__file__).with_name("report_template.html")


def flatten(data: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Nested dicts -> dotted keys, lists of scalars kept whole."""
    if isinstance(data, dict):
        rows: list[tuple[str, Any]] = []
        for key, value in data.items():
            rows.extend(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return rows
    return [(prefix, data)]


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, list | tuple):
        return ", ".join(_fmt(v) if not isinstance(v, dict) else json.dumps(v) for v in value)
    return str(value)


def html_table(data: dict[str, Any]) -> str:
    rows = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(_fmt(v))}</td></tr>" for k, v in flatten(data)
    )
    return f"<table>{rows}</table>"


def find_signals(plan: dict[str, Any]) -> dict[str, float]:
    """S/R/D/P/H wherever the plan keeps them (a 'signals' mapping, possibly under diagnostics)."""
    for holder in (plan, plan.get("diagnostics", {})):
        sig = holder.get("signals") if isinstance(holder, dict) else None
        if isinstance(sig, dict):
            return {k: float(v) for k, v in sig.items() if isinstance(v, int | float)}
    return {}


def signals_chart(path: Path, signals: dict[str, float], analysis: dict[str, Any], reference: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sketch_bars = {
        k: float(analysis[k])
        for k in ("line_quality_score", "construction_lines", "broken_lines", "stroke_width_consistency",
                  "complexity_score", "subject_scale", "anatomy_risk_score")
        if isinstance(analysis.get(k), int | float)
    }
    ref_bars = {
        k: float(reference[k])
        for k in ("similarity", "conflict_penalty", "style_distance", "saturation", "accessory_conflict",
                  "reference_final_score")
        if isinstance(reference.get(k), int | float)
    }
    groups = [("Director signals", signals), ("sketch", sketch_bars), ("reference", ref_bars)]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for ax, (title, bars) in zip(axes, groups, strict=True):
        ax.barh(list(bars), list(bars.values()), color="#3b6fb6")
        ax.set_xlim(0, 1)
        ax.set_title(title)
        ax.invert_yaxis()
        for i, v in enumerate(bars.values()):
            ax.text(min(v + 0.02, 0.85), i, f"{v:.2f}", va="center", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run_section(run: dict[str, Any] | None, skipped: str | None) -> str:
    """The locked-template run (stand-in models) or why it did not run; empty when no run was asked for."""
    if run is None and skipped is None:
        return ""
    if run is None:
        return f'<h2>Locked template run</h2>\n<p class="note">Not run: {html.escape(skipped or "")}</p>\n'
    figures = "".join(f'<figure><img src="{html.escape(name)}" alt="{html.escape(stage)}">'
                      f"<figcaption>{html.escape(stage)} (stand-in models)</figcaption></figure>"
                      for stage, name in run["images"].items())
    return (f"<h2>Locked template run ({html.escape(run['template'])}, {run['seconds']:.1f} s)</h2>\n"
            f'<p class="note"><strong>{html.escape(run["notice"])}.</strong> The template received the values '
            "below; only the model files, the image size and the step counts were changed for the stand-ins.</p>\n"
            f'<div class="images">{figures}</div>\n')


def write_report(out_dir: Path, *, title: str, sketch: Path, reference: Path | None, result: dict[str, Any],
                 comfy_version: str, run: dict[str, Any] | None = None, skipped: str | None = None,
                 planned_by: str | None = None, attempts_section: str = "", generated: str | None = None) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "plan.json").write_text(json.dumps(result, indent=2, sort_keys=False))
    sketch_copy = out_dir / f"sketch{sketch.suffix.lower()}"
    shutil.copyfile(sketch, sketch_copy)
    ref_img = ""
    if reference is not None:
        ref_copy = out_dir / f"reference{reference.suffix.lower()}"
        shutil.copyfile(reference, ref_copy)
        ref_img = ref_copy.name
    plan = result.get("plan", {})
    analysis = result.get("analysis", {})
    ref_report = result.get("reference", {})
    signals_chart(out_dir / "signals.png", find_signals(plan), analysis, ref_report)
    values = {k: v for k, v in plan.items() if k not in ("diagnostics",)}
    clamps = plan.get("diagnostics", {}).get("clamps") or plan.get("clamps") or []
    clamp_rows = "".join(f"<li>{html.escape(json.dumps(c))}</li>" for c in clamps) or "<li>no value was clamped</li>"
    warnings = plan.get("diagnostics", {}).get("warnings") or []
    clamp_rows = "".join(f'<li class="fail">warning: {html.escape(str(w))}</li>' for w in warnings) + clamp_rows
    page = Template(TEMPLATE.read_text()).substitute(
        title=html.escape(title),
        comfy_version=html.escape(comfy_version),
        when=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        planned_by=html.escape(planned_by or f"a headless ComfyUI {comfy_version}"),
        generated=html.escape(generated or ("the locked template was run with random-weight stand-in models "
                                            "(see below)" if run else "nothing was generated")),
        run_section=run_section(run, skipped),
        attempts_section=attempts_section,
        sketch_img=html.escape(sketch_copy.name),
        sketch_name=html.escape(sketch.name),
        reference_img=html.escape(ref_img),
        reference_name=html.escape(reference.name if reference else "none"),
        values_table=html_table(values),
        prompts_table=html_table(result.get("prompts", {})),
        clamps=f"<ul>{clamp_rows}</ul>",
        analysis_table=html_table(analysis),
        reference_table=html_table(ref_report),
    )
    path = out_dir / "report.html"
    path.write_text(page)
    return path


# ---- runs: every attempt's images, verdict and (adaptive template) CFG schedule ----------------------
ATTEMPT_VALUES = ("cfg1", "cfg2", "denoise1", "denoise2", "steps1", "steps2", "ip1_weight", "ip2_weight",
                  "union_strength", "pose_strength")


def schedule_series(events: list[dict[str, Any]]) -> dict[str, list[tuple[int, float, bool]]]:
    """m4.guidance websocket events -> {adaptive node id: [(call index, cfg, uncond ran)]}, finals dropped."""
    series: dict[str, list[tuple[int, float, bool]]] = {}
    for ev in events:
        if ev.get("final") or not isinstance(ev.get("cfg"), int | float):
            continue
        series.setdefault(str(ev.get("node")), []).append(
            (int(ev.get("index", len(series.get(str(ev.get("node")), [])))), float(ev["cfg"]), bool(ev.get("uncond"))))
    return series


def schedule_chart(path: Path, series: dict[str, list[tuple[int, float, bool]]], title: str) -> None:
    """CFG per model call for each adaptive-CFG node; hollow markers where the uncond pass was skipped."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 2.8))
    for node, points in sorted(series.items()):
        xs = [p[0] for p in points]
        ax.plot(xs, [p[1] for p in points], marker="o", label=f"node {node}")
        skipped = [(p[0], p[1]) for p in points if not p[2]]
        if skipped:
            ax.scatter(*zip(*skipped, strict=True), facecolors="white", edgecolors="black", zorder=3, s=30)
    ax.set_xlabel("model call")
    ax.set_ylabel("CFG")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def attempts_html(out_dir: Path, attempts: list[dict[str, Any]]) -> str:
    """One block per attempt: its images (paths made relative to the report), verdict, key values, schedule."""
    if not attempts:
        return ""
    blocks = []
    for i, attempt in enumerate(attempts, 1):
        label = str(attempt.get("label") or f"attempt {i}")
        verdict = attempt.get("verdict") or {}
        passed = verdict.get("passed")
        state = ("<span class=\"pass\">passed</span>" if passed else "<span class=\"fail\">failed</span>"
                 if passed is not None else "not judged")
        figures = "".join(
            f'<figure><img src="{html.escape(os.path.relpath(Path(img), out_dir))}" alt="{html.escape(stage)}">'
            f"<figcaption>{html.escape(label)}: {html.escape(stage)}</figcaption></figure>"
            for stage, img in (attempt.get("images") or {}).items())
        plan = attempt.get("plan") or {}
        values = {k: plan[k] for k in ATTEMPT_VALUES if k in plan}
        chart = ""
        series = schedule_series(attempt.get("schedule") or [])
        if series:
            name = f"schedule-{i}.png"
            schedule_chart(out_dir / name, series, f"Adaptive CFG schedule, {label}")
            chart = f'<p><img src="{name}" alt="adaptive CFG schedule of {html.escape(label)}"></p>'
        reasons = verdict.get("reasons") or verdict.get("failures") or []
        blocks.append(
            f'<div class="attempt"><h3>{html.escape(label)}: Line Quality {state}</h3>\n'
            f'<div class="images">{figures or "<p class=note>no image was downloaded</p>"}</div>\n'
            f"{chart}<h4>Values sent</h4>{html_table(values)}"
            f"<h4>Verdict</h4>{html_table({k: v for k, v in verdict.items() if k != 'reasons'})}"
            + (f"<ul>{''.join(f'<li>{html.escape(str(r))}</li>' for r in reasons)}</ul>" if reasons else "")
            + "</div>\n")
    return "<h2>Runs</h2>\n" + "".join(blocks)


def write_run_report(out_dir: Path, *, title: str, sketch: Path, reference: Path | None, result: dict[str, Any],
                     attempts: list[dict[str, Any]], server: str, standins: bool) -> Path:
    """The per-run report: write_report's plan sections plus every attempt (images, verdict, schedule chart)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    final = attempts[-1].get("verdict", {}) if attempts else {}
    generated = (f"{len(attempts)} attempt(s) ran on {server}"
                 + (" with RANDOM-WEIGHT STAND-IN models: the images prove the graph runs with the plan, they are "
                    "noise, not line art" if standins else "")
                 + (f"; final Line Quality verdict: {'pass' if final.get('passed') else 'fail'}" if final else ""))
    return write_report(out_dir, title=title, sketch=sketch, reference=reference, result=result, comfy_version="",
                        planned_by=f"the M4 agents in the client, run on {server}",
                        attempts_section=attempts_html(out_dir, attempts), generated=generated)
