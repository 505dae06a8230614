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

SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = SHARED / "data"
    if not path.is_dir():
        pytest.fail(f"the shared data folder is missing: expected {path} beside the clone")
    return path


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
