"""Tier 4: the bundled UI workflows in the real frontend: they load whole, Browse Templates lists them with
their thumbnails, and the planning part of the M4 preset runs from the page and shows the Director's panel."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import pytest
import requests
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from host.browser import fit_graph, open_comfy, screenshot, unexpected_console_errors

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = REPO / "workflows"
FIXTURES = REPO / "tests" / "fixtures"
sys.path.insert(0, str(REPO / "scripts"))
import build_workflows  # noqa: E402

PACK_FOLDER = "m4_director"  # the name the test server links this repository under
GENERATED = sorted(name[:-5] for name in build_workflows.build_all())

_LOAD_JS = "async ([wf, name]) => { await app.loadGraphData(wf, true, true, name); }"
# What the frontend made of the loaded graph: node types it does not know, links by input name, widgets.
# Loaders whose model file (the locked M4 checkpoint and ControlNet) is not on the test server: newer
# frontends flag them as errors on load, which says nothing about the workflow.
_INSPECT_JS = """() => { const MODEL_LOADERS = ['CheckpointLoaderSimple', 'ControlNetLoader']; return {
    unknown: app.graph._nodes.filter(n => !LiteGraph.registered_node_types[n.type] ||
                                          (n.has_errors && !MODEL_LOADERS.includes(n.type))).map(n => n.type),
    nodes: app.graph._nodes.length,
    links: app.graph.serialize().links.map(l => {
        const target = app.graph.getNodeById(l[3]);
        return [l[1], l[2], l[3], target.inputs[l[4]].name, l[5]];
    }),
    widgets: Object.fromEntries(app.graph._nodes.map(n => [n.id, Object.fromEntries(
        (n.widgets ?? []).map(w => [w.name, w.value]))])),
    dialogs: [...document.querySelectorAll('.p-dialog')].map(d => d.innerText),
}; }"""


def _load_in_page(page: Any, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    wf = json.loads((WORKFLOWS / f"{name}.json").read_text(encoding="utf-8"))
    page.evaluate(_LOAD_JS, [wf, name])
    page.wait_for_timeout(200)
    return wf, page.evaluate(_INSPECT_JS)


def test_every_bundled_workflow_loads_with_no_missing_nodes(comfy_server, browser_page, template_images):
    page = browser_page
    open_comfy(page, comfy_server.url)
    for name in GENERATED:
        wf, seen = _load_in_page(page, name)
        assert seen["unknown"] == [], f"{name}: node types the server does not know: {seen['unknown']}"
        assert not any("missing" in d.lower() for d in seen["dialogs"]), f"{name}: {seen['dialogs']}"
        assert seen["nodes"] == len(wf["nodes"])
        # The frontend reads every link onto the input the file meant (target_slot indexes its inputs).
        by_id = {n["id"]: n for n in wf["nodes"]}
        expected = sorted([o, s, t, by_id[t]["inputs"][ts]["name"], typ] for _, o, s, t, ts, typ in wf["links"])
        assert sorted(seen["links"]) == expected, f"{name}: links differ after loading"
    # widgets_values landed on the right widgets (the order the generator writes is the frontend's)
    _, seen = _load_in_page(page, "Animation_Workflow_M4")
    api = json.loads((WORKFLOWS / "api" / "Animation_Workflow_M4_Api.json").read_text(encoding="utf-8"))
    for node_id, widget in (("5", "seed"), ("5", "sampler_name"), ("5", "scheduler"), ("66", "weight_type"),
                            ("66", "embeds_scaling"), ("30", "preset"), ("21", "type"), ("12", "upscale_method")):
        assert seen["widgets"][node_id][widget] == api[node_id]["inputs"][widget], (node_id, widget)
    assert unexpected_console_errors(page) == []


def test_the_templates_are_listed_under_browse_templates_with_thumbnails(comfy_server, browser_page):
    listed = requests.get(f"{comfy_server.url}/api/workflow_templates", timeout=30).json()
    assert set(GENERATED) <= set(listed.get(PACK_FOLDER, [])), listed
    for name in GENERATED:
        thumb = requests.get(f"{comfy_server.url}/api/workflow_templates/{PACK_FOLDER}/{name}.jpg", timeout=30)
        assert thumb.status_code == 200 and thumb.content[:3] == b"\xff\xd8\xff", name

    page = browser_page
    open_comfy(page, comfy_server.url)
    page.evaluate("async () => { await app.extensionManager.command.execute('Comfy.BrowseTemplates'); }")
    # What the user sees, on the pinned and the newest frontend alike (both mark the dialog role=dialog).
    dialog = page.locator("[role=dialog]:visible").first
    dialog.wait_for(timeout=20_000)
    # The pack's category in the dialog shows its cards with thumbnails that actually decoded.
    page.get_by_text(PACK_FOLDER, exact=True).first.click()
    # The frontend fetches each thumbnail (<name>.jpg beside <name>.json) and shows it as a blob image;
    # the grid may be virtualised, so only the first cards need be in the page.
    page.wait_for_function(
        """() => {
            const imgs = [...document.querySelectorAll('[role=dialog] img')].filter(i => i.src.startsWith('blob:'));
            return imgs.length >= 3 && imgs.every(i => i.complete && i.naturalWidth > 100);
        }""", timeout=20_000)
    text = dialog.inner_text()
    shown = [name for name in GENERATED if name in text]
    assert len(shown) >= 3, text[:500]
    shot = screenshot(page, "m4_browse_templates")
    assert shot.stat().st_size > 10_000
    # Every template can be found as a user finds one: typing its name in the dialog's search box.
    search = dialog.locator("input[type=text]").first
    for name in GENERATED:
        search.fill(name)
        page.wait_for_function(
            "(name) => [...document.querySelectorAll('[role=dialog]')].some(d => d.innerText.includes(name))",
            arg=name, timeout=10_000)


def test_m4_preset_screenshot_and_its_planning_part_runs_from_the_page(comfy_server, browser_page, template_images):
    page = browser_page
    sketch = comfy_server.upload_image(FIXTURES / "sketches" / "user_3.png")
    reference = comfy_server.upload_image(FIXTURES / "references" / "madoka.jpg")
    open_comfy(page, comfy_server.url)
    wf, seen = _load_in_page(page, "Animation_Workflow_M4")
    assert seen["unknown"] == []
    fit_graph(page)
    shot = screenshot(page, "m4_ui_workflow")
    image = cv2.imread(str(shot))
    assert image is not None and image.std() > 5

    # Only the Director's branch: the locked checkpoint / ControlNet / IP-Adapter files are not on this
    # server, and the agents need none of them. A unique tag keeps the server's cache out of it.
    director = next(n["id"] for n in wf["nodes"] if n["type"] == "M4AnimationDirector")
    page.evaluate(
        """([sketch, reference, director, tag]) => {
            const set = (id, name, v) => { app.graph.getNodeById(id).widgets.find(w => w.name === name).value = v; };
            set(10, 'image', sketch); set(11, 'image', reference);
            const analyst = app.graph._nodes.find(n => n.type === 'M4VisualAnalyst');
            set(analyst.id, 'subject_tags', tag);
            app.canvas.deselectAll();
            app.canvas.selectNode(app.graph.getNodeById(director));
        }""",
        [sketch, reference, director, f"1girl, run {time.time_ns()}"],
    )
    page.evaluate("async () => { await app.extensionManager.command.execute('Comfy.QueueSelectedOutputNodes'); }")
    page.wait_for_function(
        f"() => Array.isArray(app.graph.getNodeById({director}).m4Panel)", timeout=120_000)
    panel = page.evaluate(
        f"""() => {{ const n = app.graph.getNodeById({director});
                    return {{kinds: n.m4Panel.map(p => p.kind), data: n.m4Panel[0].data,
                             text: n.m4Element ? n.m4Element.innerText : ''}}; }}""")
    assert panel["kinds"] == ["plan"]
    assert panel["data"]["case"] in ("single_simple", "single_complex", "multi_object")
    # The values are drawn as range bars, one row each; the signals as small bars below them.
    drawn = page.evaluate(
        """(id) => Object.fromEntries([...app.graph.getNodeById(id).m4Element.querySelectorAll('canvas.m4-bars')]
               .map(c => [c.className.split(' ')[1], JSON.parse(c.dataset.rows).map(r => r.field)]))""", director)
    assert {"cfg1", "ip2_weight", "ip2_end_at"} <= set(drawn["m4-plan-bars"]), drawn
    assert drawn["m4-signal-bars"] == ["S", "R", "D", "P", "H"]
    assert "reference: " in panel["text"]
    # Nothing past the planning branch ran: the samplers got no output.
    history = requests.get(f"{comfy_server.url}/api/history?max_items=1", timeout=30).json()
    outputs = next(iter(history.values()))["outputs"]
    assert str(director) in outputs and "5" not in outputs and "9" not in outputs
    assert unexpected_console_errors(page) == []


@pytest.mark.parametrize("name", ["M4_Example_Planning"])
def test_planning_example_runs_whole_from_the_page(comfy_server, browser_page, template_images, name):
    page = browser_page
    sketch = comfy_server.upload_image(FIXTURES / "sketches" / "house_line.png")
    open_comfy(page, comfy_server.url)
    wf, _ = _load_in_page(page, name)
    page.evaluate(
        """([sketch, tag]) => {
            for (const n of app.graph._nodes.filter(n => n.type === 'LoadImage'))
                n.widgets.find(w => w.name === 'image').value = sketch;
            app.graph._nodes.find(n => n.type === 'M4VisualAnalyst').widgets
                .find(w => w.name === 'subject_tags').value = tag;
        }""", [sketch, f"house, run {time.time_ns()}"])
    page.evaluate("async () => { await app.queuePrompt(0, 1); }")
    page.wait_for_function(
        """() => ['M4VisualAnalyst', 'M4ReferenceCompare', 'M4AnimationDirector', 'M4PromptEngineer']
                 .every(t => app.graph._nodes.some(n => n.type === t && Array.isArray(n.m4Panel)))""",
        timeout=120_000)
    kinds = page.evaluate("() => app.graph._nodes.find(n => n.type === 'M4AnimationDirector').m4Panel[0].kind")
    assert kinds == "plan"
    assert len(wf["nodes"]) == page.evaluate("() => app.graph._nodes.length")
    assert unexpected_console_errors(page) == []


def _queue_example_on_standin(page: Any, comfy_server: Any, example: str, sampler: str, steps: int) -> dict:
    """Load an example workflow with the stand-in checkpoint, 64x64, a fresh seed (no cache) and `steps`
    steps on its `sampler` node, and queue it from the page; returns its nodes by type."""
    open_comfy(page, comfy_server.url)
    wf = json.loads((WORKFLOWS / f"{example}.json").read_text(encoding="utf-8"))
    by_type = {n["type"]: n for n in wf["nodes"]}
    by_type["CheckpointLoaderSimple"]["widgets_values"][0] = comfy_server.checkpoint
    by_type["EmptyLatentImage"]["widgets_values"][:2] = [64, 64]
    values = by_type[sampler]["widgets_values"]
    values[0], values[2] = time.time_ns() % 2**31, steps
    page.evaluate(_LOAD_JS, [wf, example.lower()])
    page.evaluate("async () => { await app.queuePrompt(0, 1); }")
    return by_type


def _lit_pixels_js(node_id: int, canvas_class: str) -> str:
    """JS counting the curve-coloured (yellow) pixels of a node's M4 canvas; null when there is none."""
    return f"""() => {{
            const c = app.graph.getNodeById({node_id}).m4Element?.querySelector('canvas.{canvas_class}');
            if (!c) return null;
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let lit = 0;
            for (let i = 0; i < d.length; i += 4) if (d[i] > 200 && d[i + 1] > 150) lit++;
            return lit;
        }}"""


def test_adaptive_cfg_schedule_is_drawn_live_on_the_patch_node(comfy_server, browser_page):
    """The M4AdaptiveCFG example, queued from the page, streams m4.guidance events the extension plots.

    The checkpoint is swapped for the generated random-weight stand-in (and the size and steps shrunk),
    which the test says here: this checks the event path and the drawing, not image quality.
    """
    page = browser_page
    by_type = _queue_example_on_standin(page, comfy_server, "M4_Example_Adaptive_CFG", "KSampler", 8)
    patch_id = by_type["M4AdaptiveCFG"]["id"]
    # Read after the run's final event (totals, no cfg), which must label the chart, not blank it.
    page.wait_for_function(f"() => app.graph.getNodeById({patch_id})?.m4LiveFinal?.final === true", timeout=120_000)
    live = page.evaluate(f"() => app.graph.getNodeById({patch_id}).m4Live")
    assert len(live) >= 8 and all(isinstance(p["cfg"], int | float) for p in live), live
    sigmas = [p["sigma"] for p in live]
    assert sigmas == sorted(sigmas, reverse=True), "points arrive in sampling order (falling sigma)"
    assert any(p["uncond"] is False for p in live), "linear_up skips the unconditional pass at high noise"
    assert any(p["uncond"] is True for p in live)
    lit_pixels = _lit_pixels_js(patch_id, "m4-live")
    # Polled, not read once: a read while the browser restores a discarded canvas must not decide the test.
    try:
        page.wait_for_function(f"() => (({lit_pixels})() ?? 0) > 20", timeout=15_000)
    except PlaywrightTimeout:
        state = page.evaluate(f"""() => {{
            const n = app.graph.getNodeById({patch_id}), c = n.m4Element?.querySelector('canvas.m4-live');
            return {{lit: ({lit_pixels})(), points: n.m4Live?.length,
                     canvases: n.m4Element?.querySelectorAll('canvas').length, connected: c?.isConnected,
                     lost: c?.getContext('2d').isContextLost?.(), size: [c?.width, c?.height],
                     shown: [c?.clientWidth, c?.clientHeight], cfgs: n.m4Live?.map((p) => p.cfg)}};
        }}""")
        pytest.fail(f"the live CFG curve was not drawn: {state}")
    assert unexpected_console_errors(page) == []


def test_adaptive_ksampler_schedule_panel_is_drawn_after_the_run(comfy_server, browser_page):
    """The M4AdaptiveKSampler example's report panel (the run's per-call schedule) is drawn on the node.

    Stand-in checkpoint, 64x64, 6 steps (said here): this checks the panel path, not image quality.
    """
    page = browser_page
    by_type = _queue_example_on_standin(page, comfy_server, "M4_Example_Adaptive_KSampler", "M4AdaptiveKSampler", 6)
    node_id = by_type["M4AdaptiveKSampler"]["id"]
    page.wait_for_function(f"() => Array.isArray(app.graph.getNodeById({node_id})?.m4Panel)", timeout=120_000)
    lit = page.evaluate(_lit_pixels_js(node_id, "m4-schedule"))
    assert lit and lit > 20, f"the schedule chart was not drawn (lit pixels: {lit})"
    assert unexpected_console_errors(page) == []
