"""The calibrated-overlay hook `./m4 plan/run/batch` share: --overlay F / --no-overlay, and the policy to plan with."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def add_overlay_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--overlay", help="calibrated policy overlay (default: $M4_POLICY_OVERLAY, else "
                                          "m4_policy_overlay.toml beside the run log, used when present)")
    parser.add_argument("--no-overlay", action="store_true", help="plan with the locked policy, ignoring any overlay")


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
