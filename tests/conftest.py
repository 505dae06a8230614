"""Tier markers by folder, and the rule that no tier may pass by being skipped.

Host fixtures (in-process ComfyUI, real server, browser) live in tests/host/ and are registered
here as plugins so every tier shares one ComfyUI import and one server per session.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest

pytest_plugins = ["host.fixtures"]

TIERS = ("pure", "inprocess", "server", "browser")
_outcomes: dict[str, Counter[str]] = {t: Counter() for t in TIERS}


def _tier_of(path: Path) -> str | None:
    parts = path.parts
    for tier in TIERS:
        if tier in parts:
            return tier
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        tier = _tier_of(Path(str(item.fspath)).relative_to(Path(__file__).parent))
        if tier:
            item.add_marker(getattr(pytest.mark, tier))
            item.user_properties.append(("tier", tier))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    tier = dict(report.user_properties).get("tier")
    if tier is None:
        return
    if report.when == "call" or report.outcome != "passed":
        # A strict expected failure (a known limit kept on record) reports "skipped"; it is not a skip.
        _outcomes[tier]["xfailed" if hasattr(report, "wasxfail") else report.outcome] += 1


def _required_tiers() -> tuple[str, ...]:
    """M4_REQUIRE_TIERS: "all", or a comma list (the test command's extra frontend runs say "browser")."""
    value = os.environ.get("M4_REQUIRE_TIERS", "").strip()
    if value == "all":
        return TIERS
    named = tuple(t.strip() for t in value.split(",") if t.strip())
    unknown = [t for t in named if t not in TIERS]
    if unknown:
        raise pytest.UsageError(f"M4_REQUIRE_TIERS: unknown tier {unknown[0]!r} (expected all or {', '.join(TIERS)})")
    return named


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """With M4_REQUIRE_TIERS (the test command, CI) every required tier must have run and none skipped."""
    required = _required_tiers()
    if not required:
        return
    problems = []
    for tier in required:
        c = _outcomes[tier]
        if c["passed"] == 0:
            problems.append(f"tier '{tier}' ran no passing test")
        if c["skipped"]:
            problems.append(f"tier '{tier}' skipped {c['skipped']} test(s)")
    if problems:
        print("\nM4 tier check FAILED: " + "; ".join(problems))
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    else:
        print("\nM4 tier check: " + ", ".join(f"{t} {_outcomes[t]['passed']} passed" for t in required))
