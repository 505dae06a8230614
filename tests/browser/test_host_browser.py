"""Tier 4: headless chromium loads the real ComfyUI frontend from the test server with this pack."""

from __future__ import annotations

import time
from pathlib import Path

import cv2

from host.browser import fit_graph, open_comfy, screenshot, unexpected_console_errors
from host.server import PACK_MODULE, pack_node_ids, txt2img_prompt

REPO = Path(__file__).resolve().parents[2]


def test_frontend_loads_the_pack_nodes_and_its_web_extension(comfy_server, browser_page, record_property):
    page = browser_page
    served: dict[str, int] = {}
    page.on("response", lambda r: served.__setitem__(r.url.removeprefix(comfy_server.url), r.status))
    started = time.perf_counter()
    open_comfy(page, comfy_server.url)
    record_property("browser_ready_s", round(time.perf_counter() - started, 2))

    ours = pack_node_ids(comfy_server.object_info())
    assert ours, f"the server registered no node from {PACK_MODULE}; log:\n{comfy_server.log_tail()}"
    registered = page.evaluate("() => Object.keys(LiteGraph.registered_node_types)")
    assert set(ours) <= set(registered), f"missing in the frontend: {sorted(set(ours) - set(registered))}"
    assert "KSampler" in registered

    # The renderer under test is the one the page shows: Nodes 2.0 draws each node as a DOM element.
    version = page.evaluate("() => window.__COMFYUI_FRONTEND_VERSION__ ?? ''")
    assert version == comfy_server.frontend, (version, comfy_server.frontend)
    record_property("frontend", f"{version}{' nodes2' if comfy_server.nodes2 else ''}")
    page.evaluate("async ([p]) => { await app.loadApiJson(p, 'm4_renderer'); }",
                  [txt2img_prompt(comfy_server.checkpoint)])
    page.wait_for_timeout(800)
    dom_nodes = page.evaluate("() => document.querySelectorAll('[data-node-id]').length")
    assert (dom_nodes == 7) == comfy_server.nodes2, f"Nodes 2.0 {comfy_server.nodes2}: {dom_nodes} DOM nodes"

    for js in sorted((REPO / "web").rglob("*.js")):
        url = "/extensions/m4_director/" + js.relative_to(REPO / "web").as_posix()
        assert served.get(url) == 200, f"the frontend did not load {url} (got {served.get(url)})"
    assert unexpected_console_errors(page) == []


def test_api_workflow_renders_on_the_canvas(comfy_server, browser_page):
    page = browser_page
    open_comfy(page, comfy_server.url)
    prompt = txt2img_prompt(comfy_server.checkpoint, width=64, height=64, steps=4)
    page.evaluate("async ([p]) => { await app.loadApiJson(p, 'm4_host_txt2img'); }", [prompt])
    page.wait_for_function("() => app.graph._nodes.length === 7")
    nodes = page.evaluate(
        """() => app.graph._nodes.map(n => ({
               type: n.type,
               widgets: Object.fromEntries((n.widgets ?? []).map(w => [w.name, w.value])),
               links: (n.inputs ?? []).filter(i => i.link != null).length,
           }))"""
    )
    assert sorted(n["type"] for n in nodes) == sorted(v["class_type"] for v in prompt.values())
    by_type = {n["type"]: n for n in nodes}
    assert by_type["CheckpointLoaderSimple"]["widgets"]["ckpt_name"] == comfy_server.checkpoint
    assert by_type["EmptyLatentImage"]["widgets"]["width"] == 64
    assert by_type["KSampler"]["widgets"]["steps"] == 4
    # Every link of the API graph became a canvas link (KSampler 4, VAEDecode 2, SaveImage 1, 2 encoders).
    assert by_type["KSampler"]["links"] == 4
    assert sum(n["links"] for n in nodes) == 9

    fit_graph(page)
    shot = screenshot(page, "host_txt2img_canvas")
    image = cv2.imread(str(shot))
    assert image is not None and image.shape[0] >= 600 and image.shape[1] >= 1000
    assert image.std() > 5, "the screenshot is blank"
    assert unexpected_console_errors(page) == []


def test_workflow_queued_from_the_browser_runs_on_the_server(comfy_server, browser_page):
    page = browser_page
    open_comfy(page, comfy_server.url)
    prefix = f"m4_host_browser_{time.time_ns()}"
    prompt = txt2img_prompt(comfy_server.checkpoint, width=64, height=64, steps=2, prefix=prefix)
    page.evaluate("async ([p]) => { await app.loadApiJson(p, 'm4_host_queue'); }", [prompt])
    page.wait_for_function("() => app.graph._nodes.length === 7")
    page.evaluate("async () => { await app.queuePrompt(0, 1); }")

    deadline = time.monotonic() + 120
    found = None
    while found is None and time.monotonic() < deadline:
        for entry in comfy_server.get_json("/history").values():
            images = entry.get("outputs", {}).get("9", {}).get("images", [])
            if images and images[0]["filename"].startswith(prefix):
                found = entry
        time.sleep(0.25)
    assert found is not None, f"the browser's prompt never finished; log:\n{comfy_server.log_tail()}"
    assert found["status"]["status_str"] == "success"
    # The frontend delivered the executed output back to the SaveImage node.
    page.wait_for_function(
        "(prefix) => Object.values(app.nodeOutputs ?? {}).some(o => (o.images ?? [])"
        ".some(i => i.filename.startsWith(prefix)))", arg=prefix, timeout=30_000)
    assert unexpected_console_errors(page) == []
