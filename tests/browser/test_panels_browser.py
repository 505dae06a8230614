"""Tier 4: after a run queued from the page, the M4 nodes show their reports through web/m4_director.js."""

from __future__ import annotations

import time
from pathlib import Path

import cv2

from agents.runtime.apply_plan import planning_graph
from host.browser import fit_graph, open_comfy, screenshot, unexpected_console_errors

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def test_analysis_and_plan_panels_render_on_the_nodes(comfy_server, browser_page):
    page = browser_page
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
    panels = page.evaluate(
        """() => Object.fromEntries(app.graph._nodes.filter(n => n.m4Panel).map(n => [n.type, {
               kinds: n.m4Panel.map(p => p.kind),
               data: n.m4Panel[0].data,
               text: n.m4Element ? n.m4Element.innerText : '',
           }]))"""
    )
    assert panels["M4VisualAnalyst"]["kinds"] == ["analysis"]
    assert panels["M4ReferenceCompare"]["data"]["colored"] is True
    director = panels["M4AnimationDirector"]
    assert director["kinds"] == ["plan"]
    # The diagnostics the seed asks to inspect are on the node, as text a person reads.
    for label in ("signals", "reference_mode", "cfg1", "ip2_weight", "ip2_end_at"):
        assert label in director["text"], f"the Director panel does not show {label}"
    assert "line_quality" in panels["M4VisualAnalyst"]["text"]
    assert director["data"]["signals"]["S"] == director["data"]["signals"]["S"]  # a number, not NaN

    fit_graph(page)
    shot = screenshot(page, "m4_planning_panels")
    image = cv2.imread(str(shot))
    assert image is not None and image.std() > 5
    assert unexpected_console_errors(page) == []
