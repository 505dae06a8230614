"""The policy the planning nodes use: the locked one, with the calibrated overlay from ComfyUI's user folder
(m4_director/m4_policy_overlay.toml, or $M4_POLICY_OVERLAY) applied when present; M4_POLICY_OVERLAY=off ignores it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..agents.policy import Policy, default_policy
from ..agents.policy.overlay import ENV_OVERLAY, OVERLAY_FILE, load_with_overlay

_cache: dict[tuple[str, int, int], tuple[Policy, dict[str, Any]]] = {}


def _overlay_path() -> Path | None:
    env = os.environ.get(ENV_OVERLAY, "").strip()
    if env.lower() in ("off", "0", "none"):
        return None
    if env:
        return Path(env)
    import folder_paths

    return Path(folder_paths.get_user_directory()) / "m4_director" / OVERLAY_FILE


def overlay_fingerprint() -> str:
    """Changes whenever the overlay node_policy() would read changes (written, rewritten, removed, switched
    off): the planning node's fingerprint_inputs, so ComfyUI re-plans instead of reusing a cached plan made
    under the previous policy."""
    path = _overlay_path()
    if path is None:
        return "overlay off"
    try:
        stat = path.stat()
    except OSError:
        return f"no overlay at {path}"
    return f"{path} {stat.st_mtime_ns} {stat.st_size}"


def node_policy() -> tuple[Policy, dict[str, Any] | None]:
    """(policy, diagnostics note or None when there is no overlay file); re-read when the file changes."""
    path = _overlay_path()
    if path is None or not path.is_file():
        return default_policy(), None
    stat = path.stat()
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    if key not in _cache:
        _cache.clear()
        result = load_with_overlay(path)
        _cache[key] = (result.policy if result.applied else default_policy(), result.diagnostics())
    return _cache[key]
