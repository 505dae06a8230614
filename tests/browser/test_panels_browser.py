"""Tier 4: after a run queued from the page, the M4 nodes draw their reports through web/m4_director.js:
range bars for the plan (a clamped value marked, its reason on hover), signal bars with thresholds.

The checks count canvas pixels in the extension's colours inside each drawn row, and save screenshots.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import cv2

from agents.runtime.apply_plan import planning_graph
from host.browser import ARTIFACTS, bar_pixels, fit_graph, open_comfy, screenshot, unexpected_console_errors

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"
# web/m4_director.js COLOURS
BOUNDS, RAW, FINAL, CLAMPED, SIGNAL, THRESHOLD = "#4f7fc0", "#ffffff", "#5fd38d", "#ff5a5a", "#f4c542", "#e040fb"
PLAN_VALUES = ["cfg1", "denoise1", "steps1", "cfg2", "denoise2", "steps2", "union_strength", "union_end",
               "pose_strength", "pose_end", "ip1_weight", "ip1_end_at", "ip2_weight", "ip2_end_at"]


def _run_planning(page, comfy_server) -> dict[str, int | str]:
    sketch = comfy_server.upload_image(FIXTURES / "sketches" / "user_3.png")
    reference = comfy_server.upload_image(FIXTURES / "references" / "madoka.jpg")
    open_comfy(page, comfy_server.url)
    # Fresh node ids (and a unique tag) so the server cannot answer from its cache.
    workflow = planning_graph(sketch=sketch, reference=reference, tags=f"balloon, run {time.time_ns()}")
    page.evaluate("async ([p]) => { await app.loadApiJson(p, 'm4_panels'); }", [workflow])
    page.wait_for_function(f"() => app.graph._nodes.length === {len(workflow)}")
    page.evaluate("async () => { await app.queuePrompt(0, 1); }")
    page.wait_for_function(
        """() => ['M4VisualAnalyst', 'M4AnimationDirector', 'M4PromptEngineer', 'M4ReferenceCompare']
                 .every(t => app.graph._nodes.some(n => n.type === t && Array.isArray(n.m4Panel)))""",
        timeout=180_000,
    )
    return page.evaluate("() => Object.fromEntries(app.graph._nodes.map(n => [n.type, n.id]))")


def test_plan_range_bars_mark_the_clamped_value_with_its_reason(comfy_server, browser_page):
    page = browser_page
    ids = _run_planning(page, comfy_server)
    director = ids["M4AnimationDirector"]
    plan = page.evaluate("(id) => app.graph.getNodeById(id).m4Panel[0]", director)
    clamped = {c["field"] for c in plan["data"]["diagnostics"]["clamps"] if abs(c["before"] - c["after"]) > 1e-9}
    assert clamped, "user_3 + madoka is planned with a clamp on record (tests/fixtures/behaviour)"

    bounds = bar_pixels(page, director, "m4-plan-bars", BOUNDS)
    raw = bar_pixels(page, director, "m4-plan-bars", RAW)
    final = bar_pixels(page, director, "m4-plan-bars", FINAL)
    red = bar_pixels(page, director, "m4-plan-bars", CLAMPED)
    assert bounds is not None and list(bounds) == PLAN_VALUES
    for field in PLAN_VALUES:
        assert bounds[field]["count"] >= 8, f"{field}: no case-bounds band drawn ({bounds[field]})"
        assert raw[field]["count"] >= 12, f"{field}: no raw marker"
        if field in clamped:
            assert red[field]["marked"] and red[field]["count"] >= 40, f"{field}: the clamp is not drawn in red"
            assert final[field]["count"] == 0, f"{field}: a clamped value is drawn as unclamped"
            reason = next(c for c in plan["data"]["diagnostics"]["clamps"] if c["field"] == field)["rule"]
            assert reason in red[field]["tip"]
        else:
            assert not red[field]["marked"] and red[field]["count"] == 0, f"{field}: marked red without a clamp"
            assert final[field]["count"] >= 30, f"{field}: no final marker"

    # The reason shows on hover: the pointer over the clamped row sets the canvas's tooltip.
    field = sorted(clamped)[0]
    row = PLAN_VALUES.index(field)
    tip = page.evaluate(
        """([id, row]) => {
            const c = app.graph.getNodeById(id).m4Element.querySelector('canvas.m4-plan-bars');
            const band = JSON.parse(c.dataset.rows)[row], r = c.getBoundingClientRect();
            const y = r.top + (band.y0 + 5) * r.height / c.height;
            c.dispatchEvent(new MouseEvent('mousemove', {clientX: r.left + r.width / 2, clientY: y, bubbles: true}));
            return c.title;
        }""", [director, row])
    assert tip.startswith(field) and "clamped" in tip, tip

    signals = bar_pixels(page, director, "m4-signal-bars", SIGNAL)
    assert list(signals) == ["S", "R", "D", "P", "H"]
    for key, value in plan["data"]["signals"].items():
        # the filled share of a 170 px, 10 px high bar, give or take the rounding at the edge
        assert abs(signals[key]["count"] - value * 170 * 10) <= 40, (key, value, signals[key]["count"])
    text = page.evaluate("(id) => app.graph.getNodeById(id).m4Element.innerText", director)
    for label in ("case: ", "scale: ", "reference: ", "union_pose_coupling"):
        assert label in text, f"the Director panel does not show {label!r}"

    fit_graph(page)
    screenshot(page, "m4_planning_panels")
    shot = _director_screenshot(page, director)
    image = cv2.imread(str(shot))
    assert image is not None and image.shape[0] > 300 and image.std() > 10
    # The README shows this picture: docs/m4_director_panel.png, refreshed from here with M4_SCREENSHOTS=1.
    docs = REPO / "docs" / "m4_director_panel.png"
    if os.environ.get("M4_SCREENSHOTS") == "1":
        docs.parent.mkdir(exist_ok=True)
        shutil.copyfile(shot, docs)
    assert docs.is_file() and "docs/m4_director_panel.png" in (REPO / "README.md").read_text(encoding="utf-8")
    assert unexpected_console_errors(page) == []


def _director_screenshot(page, director: int | str) -> Path:
    """The Director node alone, at 1:1, saved under tests/artifacts (the README's picture is a copy)."""
    page.evaluate(
        """(id) => { const n = app.graph.getNodeById(id), el = app.canvas.canvas;
            app.canvas.ds.scale = 1.25;
            app.canvas.ds.offset = [el.clientWidth / 2.5 - n.pos[0] - n.size[0] / 2, 110 - n.pos[1]];
            app.canvas.setDirty(true, true); }""", director)
    page.wait_for_timeout(400)
    box = page.evaluate(
        """(id) => { const n = app.graph.getNodeById(id), ds = app.canvas.ds,
                     r = app.canvas.canvas.getBoundingClientRect(), t = LiteGraph.NODE_TITLE_HEIGHT;
            return {x: r.left + (n.pos[0] + ds.offset[0]) * ds.scale - 4,
                    y: r.top + (n.pos[1] - t + ds.offset[1]) * ds.scale - 4,
                    width: n.size[0] * ds.scale + 8, height: (n.size[1] + t) * ds.scale + 8}; }""", director)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / "m4_director_panel.png"
    page.screenshot(path=str(path), clip=box)
    return path


def test_analyst_and_compare_draw_their_signals_with_thresholds(comfy_server, browser_page):
    page = browser_page
    ids = _run_planning(page, comfy_server)
    for node_type, cls in (("M4VisualAnalyst", "m4-analysis-bars"), ("M4ReferenceCompare", "m4-reference-bars")):
        node = ids[node_type]
        panel = page.evaluate("(id) => app.graph.getNodeById(id).m4Panel[0]", node)
        yellow = bar_pixels(page, node, cls, SIGNAL)
        magenta = bar_pixels(page, node, cls, THRESHOLD)
        assert yellow, f"{node_type}: no signal bars"
        for field, cell in yellow.items():
            value = panel["data"][field]
            marks = panel["marks"].get(field, [])
            # the filled share of a 170 px, 10 px high bar; a threshold tick (2 px wide) drawn inside the
            # fill covers 20 of its pixels; give or take the rounding at the edges
            covered = 20 * sum(1 for m in marks if m < value)
            assert abs(cell["count"] + covered - value * 170 * 10) <= 30, (node_type, field, value, cell["count"])
            # each threshold is a 2 px x 14 px tick (ticks on top of each other may share pixels)
            assert (magenta[field]["count"] >= 20) == bool(marks), (node_type, field, marks, magenta[field])
        assert any(panel["marks"].get(f) for f in yellow), f"{node_type}: no threshold drawn"
    assert unexpected_console_errors(page) == []
