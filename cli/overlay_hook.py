"""The calibrated-overlay hook `./m4 plan/run/batch` share: --overlay F / --no-overlay, and the policy to plan with."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def add_overlay_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--overlay", help="calibrated policy overlay (default: $M4_POLICY_OVERLAY, else "
                                          "m4_policy_overlay.toml beside the run log, used when present)")
    parser.add_argument("--no-overlay", action="store_true", help="plan with the locked policy, ignoring any overlay")
    parser.add_argument("--explore", action="store_true",
                        help="calibration exploration (off by default): jitter the driven values a little inside "
                             "their bounds (hard rules kept) and log the draw's density for off-policy evaluation")


def overlay_path(args: argparse.Namespace, log_path: str | Path | None) -> Path | None:
    from agents.policy.overlay import default_overlay_path

    if getattr(args, "no_overlay", False):
        return None
    if getattr(args, "overlay", None):
        return Path(args.overlay).expanduser()
    return default_overlay_path(beside=Path(log_path) if log_path is not None else None)


def resolve_policy(args: argparse.Namespace, log_path: str | Path | None, label: str) -> tuple[Any, dict[str, Any]]:
    """(policy, diagnostics entry) and one line saying which policy plans; a bad overlay never stops the run."""
    from agents.policy.overlay import load_with_overlay

    if getattr(args, "no_overlay", False):
        result = load_with_overlay(None)
        note = {"applied": False, "path": None, "note": "--no-overlay: the locked policy"}
    else:
        result = load_with_overlay(overlay_path(args, log_path))
        note = result.diagnostics()
    present = result.path is not None and Path(result.path).is_file()
    if result.applied or present or getattr(args, "overlay", None) or getattr(args, "no_overlay", False):
        print(f"[{label}] policy: {note['note']}" + (f" ({result.path})" if result.applied else ""), flush=True)
    return result.policy, note


def exploration(args: argparse.Namespace, policy: Any) -> Any:
    """The plan adjustment --explore asks for (None when off): agents/calibration/explore.py, thread-safe."""
    if not getattr(args, "explore", False):
        return None
    import threading

    import numpy as np

    from agents.calibration.explore import explored_plan
    from agents.calibration.settings import load_settings

    share = load_settings().jitter
    rng = np.random.default_rng()
    lock = threading.Lock()

    def adjust(p: Any) -> Any:
        with lock:
            return explored_plan(p, policy, rng, share)

    print(f"[m4] exploration on: driven values jittered by up to {share:g} of their bounds' width", flush=True)
    return adjust
