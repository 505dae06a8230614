"""The ComfyUI frontends the browser tier runs against: the one ComfyUI 0.3.75 pins (its own
requirement, in the venv) and the newest `comfyui-frontend-package` on PyPI this suite was checked
with, installed here with pip into the shared cache (`pip install --target`, once) and served through
ComfyUI's `--front-end-root`.

M4_FRONTEND selects it for a test session: unset or "pinned" = the venv's package; "newest" = NEWEST.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from pathlib import Path

PINNED = "1.32.9"  # what ComfyUI 0.3.75's requirements.txt pins (comfyui-frontend-package==1.32.9)
NEWEST = "1.58.1"  # the newest release on PyPI when the suite was last checked against it
PACKAGE = "comfyui-frontend-package"


class FrontendUnavailable(RuntimeError):
    pass


def cache_dir() -> Path:
    return Path(os.environ.get("M4_CACHE", Path.home() / ".cache" / "m4-director"))


def selected() -> str:
    """The frontend version this session's server serves (M4_FRONTEND)."""
    choice = os.environ.get("M4_FRONTEND", "pinned").strip().lower() or "pinned"
    if choice not in ("pinned", "newest"):
        raise FrontendUnavailable(f"M4_FRONTEND: expected 'pinned' or 'newest', got {choice!r}")
    return PINNED if choice == "pinned" else NEWEST


def frontend_root(version: str) -> Path | None:
    """The static folder to pass as --front-end-root, or None for the venv's own (pinned) package.

    Installs the package with the venv's pip into <cache>/frontend-<version>/ the first time (no
    dependencies: the package is the built web app), under a lock so parallel sessions share one install.
    """
    if version == PINNED:
        return None
    target = cache_dir() / f"frontend-{version}"
    static = target / "comfyui_frontend_package" / "static"
    if (static / "index.html").is_file():
        return static
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".frontend-{version}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (static / "index.html").is_file():
            partial = target.with_name(target.name + ".partial")
            cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(partial),
                   f"{PACKAGE}=={version}"]
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
            if done.returncode != 0:
                raise FrontendUnavailable(f"pip could not install {PACKAGE}=={version}: {done.stderr.strip()[-800:]}")
            partial.rename(target)
    if not (static / "index.html").is_file():
        raise FrontendUnavailable(f"{PACKAGE}=={version} installed without static/index.html under {target}")
    return static


def server_args(version: str) -> tuple[str, ...]:
    root = frontend_root(version)
    return () if root is None else ("--front-end-root", str(root))
