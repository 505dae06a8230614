"""Tier 4: every bundled workflow, loaded and run from the page (as far as this server can run it), has no
two nodes overlapping, before or after the run: the M4 panels reserve their height when a node is created,
so a report never grows a node over its neighbour. The Line Quality panel draws pass/fail per measure.

What runs: the planning and line-quality examples whole; the M4 presets' planning branch (the locked
model files are not on this server); the adaptive examples and the logged-run example (the whole preset with
M4 Run Logger) on the random-weight stand-in checkpoint and ControlNet at 64x64 with few steps (said here:
this checks layout and drawing, not images).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from host.browser import bar_pixels, fit_graph, open_comfy, overlapping_nodes, screenshot, unexpected_console_errors

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = REPO / "workflows"
FIXTURES = REPO / "tests" / "fixtures"
sys.path.insert(0, str(REPO / "scripts"))
import build_workflows  # noqa: E402

GENERATED = sorted(name[:-5] for name in build_workflows.build_all())
PLANNING_OUTPUTS = ["M4VisualAnalyst", "M4ReferenceCompare", "M4AnimationDirector", "M4PromptEngineer"]
# What each workflow's run shows: node types that must have a panel (or a live plot) afterwards.
SHOWN = {
    "Animation_Workflow_M4": PLANNING_OUTPUTS, "Animation_Workflow_M4_Adaptive": PLANNING_OUTPUTS,
    "M4_Example_Planning": PLANNING_OUTPUTS, "M4_Example_Line_Quality": ["M4LineQualityAnalyzer"],
    "M4_Example_Adaptive_CFG": ["M4AdaptiveCFG"], "M4_Example_Adaptive_KSampler": ["M4AdaptiveKSampler"],
    "M4_Example_Adaptive_Guider_Early_Stop": [], "M4_Example_Inbetween": ["M4KeyframeImputer"],
    "M4_Example_Audio_Patterns": ["M4AudioFeatures"],
    # Runs whole from the page (stand-in models): Plan Unpack feeds the samplers, so its panel is drawn too.
    build_workflows.LOGGED_RUN: [*PLANNING_OUTPUTS, "M4PlanUnpack", "M4LineQualityAnalyzer", "M4RunLogger"],
}
PASS, FAIL, THRESHOLD, SIGNAL = "#5fd38d", "#ff5a5a", "#e040fb", "#f4c542"
_SIZES_JS = "() => Object.fromEntries(app.graph._nodes.map(n => [n.id, [...n.size]]))"


def _prepare(wf: dict[str, Any], comfy_server: Any) -> None:
    """Stand-in checkpoint and ControlNet, 64x64 and 4 steps, fresh seeds and tags: the server's cache answers
    nothing."""
    for node in wf["nodes"]:
        values = node.get("widgets_values")
        if node["type"] == "CheckpointLoaderSimple":
            values[0] = comfy_server.checkpoint
        elif node["type"] == "ControlNetLoader":
            values[0] = comfy_server.controlnet
        elif node["type"] == "ImageScale":  # upscale_method, width, height, crop
            values[1:3] = [64, 64]
        elif node["type"] == "OpenposePreprocessor":  # detect_hand, detect_body, detect_face, resolution, ...
            values[3] = 64
        elif node["type"] == "EmptyLatentImage":
            values[:2] = [64, 64]
        elif node["type"] in ("KSampler", "M4AdaptiveKSampler"):
            values[0], values[2] = time.time_ns() % 2**31, 4
        elif node["type"] == "RandomNoise":
            values[0] = time.time_ns() % 2**31
        elif node["type"] == "BasicScheduler":
            values[1] = 4
        elif node["type"] == "M4VisualAnalyst":
            names = [i["name"] for i in build_workflows.load_snapshot()["M4VisualAnalyst"]["inputs"]
                     if i["type"] in build_workflows.WIDGET_TYPES]
            values[names.index("subject_tags")] = f"1girl, run {time.time_ns()}"


def _idle(comfy_server: Any) -> None:
    """Nothing queued or running: a heavy example an earlier test left rendering (the audio frames, the
    in-between refine) must not make the next workflow's run wait past its timeout."""
    requests.post(f"{comfy_server.url}/queue", json={"clear": True}, timeout=10)
    requests.post(f"{comfy_server.url}/interrupt", timeout=10)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        q = requests.get(f"{comfy_server.url}/queue", timeout=10).json()
        if not q.get("queue_running") and not q.get("queue_pending"):
            return
        time.sleep(0.25)
    raise AssertionError("the test server's queue did not empty within 120 s")


def _queue(page: Any, name: str) -> None:
    if name.startswith("Animation_Workflow_M4"):  # the planning branch only
        page.evaluate(
            """(types) => { app.canvas.deselectAll();
                for (const n of app.graph._nodes.filter(n => types.includes(n.type)))
                    app.canvas.selectNode(n, true); }""",
            PLANNING_OUTPUTS)
        page.evaluate("async () => { await app.extensionManager.command.execute('Comfy.QueueSelectedOutputNodes'); }")
    else:
        page.evaluate("async () => { await app.queuePrompt(0, 1); }")


@pytest.mark.parametrize("name", GENERATED)
def test_no_two_nodes_overlap_before_or_after_a_run(comfy_server, browser_page, template_images, name):
    page = browser_page
    _idle(comfy_server)
    open_comfy(page, comfy_server.url)
    wf = json.loads((WORKFLOWS / f"{name}.json").read_text(encoding="utf-8"))
    _prepare(wf, comfy_server)
    page.evaluate("async ([wf, name]) => { await app.loadGraphData(wf, true, true, name); }", [wf, name])
    page.wait_for_timeout(500)
    assert overlapping_nodes(page) == [], f"{name}: nodes overlap as loaded"
    before = page.evaluate(_SIZES_JS)

    _queue(page, name)
    shown = SHOWN[name]
    page.wait_for_function(
        """(types) => types.every(t => app.graph._nodes.some(n => n.type === t &&
                                   (Array.isArray(n.m4Panel) || (n.m4Live?.length ?? 0) > 0)))""",
        arg=shown, timeout=180_000)
    if not shown:  # nothing of this pack draws here: wait for the run itself to finish
        page.wait_for_function("() => Object.keys(app.nodeOutputs ?? {}).length > 0", timeout=180_000)
    page.wait_for_timeout(800)  # the last events and one redraw
    assert overlapping_nodes(page) == [], f"{name}: nodes overlap after the run"
    after = page.evaluate(_SIZES_JS)
    # This pack's nodes keep their size (their panels were reserved); a core node showing its output
    # image (SaveImage, PreviewImage) may grow, as long as it covers nothing (checked above).
    ours = set(page.evaluate("(ids) => app.graph._nodes.filter(n => ids.includes(n.type)).map(n => String(n.id))",
                             list(build_workflows.PANEL_HEIGHTS)))
    grown = {k: (before[k], v) for k, v in after.items()
             if k in ours and (v[1] > before[k][1] + 0.5 or v[0] > before[k][0] + 0.5)}
    assert grown == {}, f"{name}: a run grew these nodes: {grown}"
    fit_graph(page)
    screenshot(page, f"layout_{name}")
    if name == "M4_Example_Line_Quality":
        _check_line_quality_panel(page)
    if name == "M4_Example_Inbetween":
        _check_inbetween_strip(page)
    if name == "M4_Example_Audio_Patterns":
        _check_audio_curves(page)
    assert unexpected_console_errors(page) == []


# Pixels of one colour inside each column of the Keyframe Imputer's strip (web/m4_panels.js renderInbetween).
_STRIP_PIXELS_JS = """([nodeId, hex]) => {
    const c = app.graph.getNodeById(nodeId)?.m4Element?.querySelector('canvas.m4-inbetween-frames');
    if (!c) return null;
    const want = [1, 3, 5].map(i => parseInt(hex.slice(i, i + 2), 16));
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    return JSON.parse(c.dataset.frames).map(col => {
        let count = 0;
        for (let y = 0; y < c.height; y++) for (let x = col.x0; x < col.x1; x++) {
            const i = 4 * (y * c.width + x);
            if (want.every((v, k) => Math.abs(d[i + k] - v) <= 12)) count++;
        }
        return {...col, count};
    });
}"""


def _check_inbetween_strip(page: Any) -> None:
    """One column per frame; the keys (exact) full height in green, the other frames in yellow (or red when
    flagged) with a height that grows with their distance to the nearest key."""
    node = page.evaluate("() => app.graph._nodes.find(n => n.type === 'M4KeyframeImputer').id")
    data = page.evaluate("(id) => app.graph.getNodeById(id).m4Panel[0].data", node)
    green = page.evaluate(_STRIP_PIXELS_JS, [node, PASS])
    assert green is not None and len(green) == data["length"], (len(green or []), data["length"])
    keys = set(data["key_indices"])  # the report lists them as numbers
    assert {c["frame"] for c in green if c["key"]} == keys
    for col in green:
        width = col["x1"] - col["x0"]
        assert (col["count"] >= width * 40) == col["key"], col  # a key's column is green over its 44 px
    cds = data["chart"]["cd"]
    inner = [c for c in green if not c["key"]]
    if len(inner) >= 2:  # taller where the frame departs further from its nearest key
        far, near = max(inner, key=lambda c: cds[c["frame"]]), min(inner, key=lambda c: cds[c["frame"]])
        assert far["height"] >= near["height"], (far, near)


def _check_audio_curves(page: Any) -> None:
    """Each feature drawn as a filled curve in its own row (its pixels = the curve's columns exactly as the
    data says), the beats ticked on theirs."""
    import math

    node = page.evaluate("() => app.graph._nodes.find(n => n.type === 'M4AudioFeatures').id")
    data = page.evaluate("(id) => app.graph.getNodeById(id).m4Panel[0].data", node)
    yellow = bar_pixels(page, node, "m4-audio-curves", SIGNAL)
    ticks = bar_pixels(page, node, "m4-audio-curves", THRESHOLD)
    bands = {b["field"]: b for b in page.evaluate(
        "(id) => JSON.parse(app.graph.getNodeById(id).m4Element.querySelector('canvas.m4-audio-curves').dataset.rows)",
        node)}
    assert yellow is not None and list(yellow) == [*data["curves"], "beats"], list(yellow or [])
    for name, values in data["curves"].items():
        w, n = bands[name]["x1"] - bands[name]["x0"], len(values)
        want = sum(math.floor(min(max(values[min(n - 1, x * n // w)], 0.0), 1.0) * 10 + 0.5) for x in range(w))
        assert abs(yellow[name]["count"] - want) <= 3, (name, yellow[name]["count"], want)
    assert (ticks["beats"]["count"] > 0) == bool(data["beat_positions"]), (ticks["beats"], data["beats"])
    assert any(yellow[name]["count"] > 0 for name in data["curves"]), "every curve is empty"


def _check_line_quality_panel(page: Any) -> None:
    node = page.evaluate("() => app.graph._nodes.find(n => n.type === 'M4LineQualityAnalyzer').id")
    data = page.evaluate("(id) => app.graph.getNodeById(id).m4Panel[0].data", node)
    green = bar_pixels(page, node, "m4-line-quality-bars", PASS)
    red = bar_pixels(page, node, "m4-line-quality-bars", FAIL)
    ticks = bar_pixels(page, node, "m4-line-quality-bars", THRESHOLD)
    assert green is not None and list(green) == ["broken", "dotted", "fringe", "jitter", "stray"]
    for metric in green:
        worst = max(s[metric] for s in data["scores"])
        failed = metric in data["failures"]
        colour, other = (red, green) if failed else (green, red)
        # the bar's fill (worst x 170 px x 10 px) in the verdict's colour, none in the other one
        assert abs(colour[metric]["count"] - worst * 1700) <= 40 + 14 * 9, (metric, worst, colour[metric])
        assert other[metric]["count"] <= 14 * 9, (metric, other[metric])  # at most the "pass"/"FAIL" text
        assert colour[metric]["marked"] == failed
        assert ticks[metric]["count"] >= 20, f"{metric}: its limit is not marked"
    text = page.evaluate("(id) => app.graph.getNodeById(id).m4Element.innerText", node)
    assert ("PASS" if data["passed"] else "FAIL") in text
