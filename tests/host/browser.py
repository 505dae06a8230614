"""Tier 4 host: Debian's chromium driven headless by Playwright (sync API) against the real server.

Playwright brings only its driver here; the browser is the system chromium (never `playwright install`).
Each test gets a fresh context (a fresh profile), so no state leaks between tests.
"""

from __future__ import annotations

import re
import shutil
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright, sync_playwright

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "tests" / "artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]
_PROBE_404 = r"^console: Failed to load resource: .*404.*\(https?://127\.0\.0\.1:\d+"
# What the 0.3.75 frontend (1.32.9) logs by itself against a fresh server, checked here with no custom
# nodes loaded. Anything else (a 404 of the pack's own files included) counts as an error.
KNOWN_FRONTEND_ERRORS = (
    re.compile(r"reading 'id'"),  # its own TypeError in GraphView on every load
    # optional files a new user does not have yet
    re.compile(_PROBE_404 + r"(/api/userdata)?/user\.css:"),
    re.compile(_PROBE_404 + r"/favicon\.ico:"),
    re.compile(_PROBE_404 + r"/api/userdata/comfy\.templates\.json:"),
    re.compile(_PROBE_404 + r"/api/userdata\?dir=(workflows|subgraphs%2F)&"),
    # its registry look-up, blocked by the server's own Content-Security-Policy (no traffic leaves)
    re.compile(r"^console: Connecting to 'https://api\.comfy\.org/.*violates the following Content Security Policy"),
)
# What the newest frontend (tests/host/frontend.py NEWEST) logs by itself against a ComfyUI 0.3.75 server
# with no custom nodes: it asks for the /api/jobs route that server predates, for subgraphs with an
# argument the old route refuses, and its default template probes model URLs that the server's
# Content-Security-Policy blocks (no traffic leaves). Only counted when that frontend is under test.
NEWEST_FRONTEND_ERRORS = (
    re.compile(_PROBE_404 + r"/api/jobs\?"),
    re.compile(_PROBE_404 + r"/api/userdata\?dir=subgraphs&"),
    re.compile(r"^console: (Failed to fetch queue: |\[Jobs API\] Error fetching jobs: )"
               r"JobsApiError: Failed to fetch jobs: 404"),
    re.compile(r"^console: (Connecting to '|Fetch API cannot load )https://huggingface\.co/.*Content Security Policy"),
)
READY_JS = "() => Boolean(window.app && window.app.graph && window.app.extensionManager)"


class ChromiumMissing(RuntimeError):
    pass


def chromium_path() -> str | None:
    if Path("/usr/bin/chromium").is_file():
        return "/usr/bin/chromium"
    return shutil.which("chromium")


@dataclass
class BrowserHost:
    playwright: Playwright
    browser: Browser

    def close(self) -> None:
        try:
            self.browser.close()
        finally:
            self.playwright.stop()


def launch() -> BrowserHost:
    """Start headless chromium once per session; raises ChromiumMissing if it is not installed."""
    executable = chromium_path()
    if executable is None:
        raise ChromiumMissing("chromium not installed: run scripts/bootstrap.sh")
    pw = sync_playwright().start()
    try:
        browser = pw.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
    except BaseException:
        pw.stop()
        raise
    return BrowserHost(pw, browser)


@dataclass
class ConsoleLog:
    """Console errors and uncaught page errors of one page."""

    errors: list[str] = field(default_factory=list)

    def on_console(self, msg: ConsoleMessage) -> None:
        if msg.type == "error":
            loc = msg.location or {}
            self.errors.append(f"console: {msg.text} ({loc.get('url', '?')}:{loc.get('lineNumber', '?')})")

    def on_page_error(self, exc: Any) -> None:
        self.errors.append(f"pageerror: {exc}")

    def unexpected(self) -> list[str]:
        from . import frontend  # the frontend this session serves decides what it logs by itself

        known = KNOWN_FRONTEND_ERRORS + (NEWEST_FRONTEND_ERRORS if frontend.selected() == frontend.NEWEST else ())
        return [e for e in self.errors if not any(p.search(e) for p in known)]


_LOGS: weakref.WeakKeyDictionary[Page, ConsoleLog] = weakref.WeakKeyDictionary()


def attach_console(page: Page) -> ConsoleLog:
    log = ConsoleLog()
    page.on("console", log.on_console)
    page.on("pageerror", log.on_page_error)
    _LOGS[page] = log
    return log


def console_log(page: Page) -> ConsoleLog:
    """The log attach_console (the browser_page fixture) set up for this page."""
    return _LOGS[page]


def unexpected_console_errors(page: Page) -> list[str]:
    return console_log(page).unexpected()


def close_templates_dialog(page: Page) -> None:
    """Close the Templates dialog a new user sees (the launcher's settings normally prevent it)."""
    dialog = page.locator(".p-dialog:visible")
    for _ in range(3):
        if dialog.count() == 0:
            return
        page.keyboard.press("Escape")
        page.wait_for_timeout(200)


def open_comfy(page: Page, url: str, timeout_ms: float = 60_000) -> None:
    """Load the ComfyUI frontend and wait until the app, its graph and extension manager exist."""
    page.goto(url, wait_until="domcontentloaded", timeout=timeout_ms)
    page.wait_for_function(READY_JS, timeout=timeout_ms)
    # Extensions register in setup(); the node defs arrive before the graph is configured.
    page.wait_for_function("() => Object.keys(window.LiteGraph?.registered_node_types ?? {}).length > 0",
                           timeout=timeout_ms)
    close_templates_dialog(page)


_FIT_JS = """() => {
    const nodes = app.graph._nodes;
    if (!nodes.length) return false;
    let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
    for (const n of nodes) {
        x0 = Math.min(x0, n.pos[0]); y0 = Math.min(y0, n.pos[1] - 40);  // 40: the title bar above pos
        x1 = Math.max(x1, n.pos[0] + n.size[0]); y1 = Math.max(y1, n.pos[1] + n.size[1]);
    }
    const el = app.canvas.canvas, w = el.clientWidth, h = el.clientHeight;
    const s = Math.min(1.2, 0.9 * Math.min(w / (x1 - x0), h / (y1 - y0)));
    app.canvas.ds.scale = s;
    app.canvas.ds.offset = [(w / s - (x1 - x0)) / 2 - x0, (h / s - (y1 - y0)) / 2 - y0];
    app.canvas.setDirty(true, true);
    return true;
}"""


def fit_graph(page: Page) -> None:
    """Zoom and pan the canvas so every node is in view (for screenshots)."""
    page.evaluate(_FIT_JS)
    page.wait_for_timeout(250)  # one animation frame or two to redraw


def screenshot(page: Page, name: str) -> Path:
    """Save a full-page PNG under tests/artifacts/ (git-ignored) and return its path."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "screenshot"
    path = ARTIFACTS / f"{safe}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


# Pixels of one colour (within `tol` per channel) in each row band of an M4 bar canvas on a node. The
# canvas lists its row bands in data-rows ({field, y0, y1, x0, x1, marked, tip}); returns
# {field: {count, marked, tip}} or null when the node has no such canvas.
BAR_PIXELS_JS = """([nodeId, cls, hex, tol]) => {
    const c = app.graph.getNodeById(nodeId)?.m4Element?.querySelector('canvas.' + cls);
    if (!c) return null;
    const want = [1, 3, 5].map(i => parseInt(hex.slice(i, i + 2), 16));
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    const out = {};
    for (const band of JSON.parse(c.dataset.rows)) {
        let count = 0;
        for (let y = band.y0 - 2; y < band.y1 + 2; y++) for (let x = 0; x < c.width; x++) {
            const i = 4 * (y * c.width + x);
            if (want.every((v, k) => Math.abs(d[i + k] - v) <= tol)) count++;
        }
        out[band.field] = {count, marked: band.marked, tip: band.tip};
    }
    return out;
}"""


def bar_pixels(page: Page, node_id: int, canvas_class: str, colour: str, tol: int = 12) -> dict[str, Any] | None:
    return page.evaluate(BAR_PIXELS_JS, [node_id, canvas_class, colour, tol])


# Every node's rectangle as the canvas draws it (title bar included), after the frontend's own layout.
NODE_RECTS_JS = """() => app.graph._nodes.map(n => {
    const t = LiteGraph.NODE_TITLE_HEIGHT;
    return {id: n.id, type: n.type, rect: [n.pos[0], n.pos[1] - t, n.size[0], n.size[1] + t]};
})"""


# With the new node renderer ("Nodes 2.0") each node is also a DOM element: its on-screen box counts too.
DOM_NODE_RECTS_JS = """() => [...document.querySelectorAll('[data-node-id]')].map(el => {
    const r = el.getBoundingClientRect();
    return {id: el.dataset.nodeId, type: 'dom', rect: [r.left, r.top, r.width, r.height]};
})"""


def overlapping_nodes(page: Page) -> list[tuple[str, str]]:
    """Pairs of nodes whose rectangles intersect (touching edges do not count): the graph's own node
    rectangles, and where the frontend draws nodes as DOM elements (Nodes 2.0), their boxes on screen."""
    pairs = _overlaps(page.evaluate(NODE_RECTS_JS))
    return pairs + _overlaps(page.evaluate(DOM_NODE_RECTS_JS))


def _overlaps(rects: list[dict[str, Any]]) -> list[tuple[str, str]]:
    pairs = []
    for i, a in enumerate(rects):
        ax, ay, aw, ah = a["rect"]
        for b in rects[i + 1:]:
            bx, by, bw, bh = b["rect"]
            if ax < bx + bw and bx < ax + aw and ay < by + bh and by < ay + ah:
                pairs.append((f"{a['type']} {a['id']}", f"{b['type']} {b['id']}"))
    return pairs
