"""Session fixtures for the four tiers. A host that cannot start fails the test, never skips it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from . import inprocess

REPO = Path(__file__).resolve().parents[2]
if str(REPO / "scripts") not in sys.path:
    sys.path.insert(0, str(REPO / "scripts"))
import comfy_host  # noqa: E402  (scripts/comfy_host.py, standard library only)

FIXTURES = REPO / "tests" / "fixtures"


@pytest.fixture(scope="session")
def fixture_data() -> Path:
    """The real drawings and references committed with the tests (licences in their NOTICE.md)."""
    return FIXTURES


@pytest.fixture(scope="session")
def comfy_tree() -> Path:
    return comfy_host.ensure_comfyui()


@pytest.fixture(scope="session")
def comfy(comfy_tree: Path):
    """ComfyUI imported in this process (tier 2), once per session."""
    return inprocess.import_comfy(comfy_tree)


@pytest.fixture(scope="session")
def pack(comfy):
    """This repository imported as the package ComfyUI would load (needs comfy importable)."""
    return inprocess.import_pack()


@pytest.fixture()
def tiny_model(comfy):
    return inprocess.tiny_model(comfy)


@pytest.fixture()
def tiny_conditioning():
    return inprocess.conditioning()


# ---- tiers 3 and 4: one real server and one browser per session ----


@pytest.fixture(scope="session")
def comfy_server(tmp_path_factory: pytest.TempPathFactory):
    """A real ComfyUI server on 127.0.0.1 with this pack and the stand-in checkpoint (tier 3)."""
    from . import server

    srv, problem = None, ""
    try:
        srv = server.start_server(tmp_path_factory.mktemp("comfy-server"))
    except server.ServerStartFailed as exc:
        problem = str(exc)
    if srv is None:  # failed outside the except block: the report shows the log tail, not a traceback chain
        pytest.fail(f"the ComfyUI test server could not start: {problem}", pytrace=False)
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def chromium_browser():
    """Debian's chromium, headless, once per session (tier 4)."""
    from . import browser

    host, problem = None, ""
    try:
        host = browser.launch()
    except browser.ChromiumMissing as exc:
        problem = str(exc)
    if host is None:
        pytest.fail(problem, pytrace=False)
    yield host.browser
    host.close()


@pytest.fixture()
def browser_page(chromium_browser):
    """A page in a fresh browser context (fresh profile); console errors are collected for it."""
    from . import browser

    context = chromium_browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    browser.attach_console(page)
    yield page
    context.close()
