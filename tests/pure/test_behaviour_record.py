"""The planning behaviour on record: every fixture sketch x reference (and none) x tags, planned end to end
(analysis, reference report, plan, prompts), plus the bundled workflows' bytes. A refactor must leave
them identical: every key, string, integer and flag exactly, every float to 1e-9 relative (the last bits
of a float differ between CPUs: numpy's and OpenCV's SIMD paths round differently, by 1e-12 at most on the
record); a deliberate behaviour change re-records them (M4_RECORD=1) in the same commit and says why.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"
RECORD = FIXTURES / "behaviour" / "plans.json"
TAG_SETS = ("", "1girl, solo, twintails")


def _pairs() -> list[tuple[Path, Path | None, str]]:
    sketches = sorted((FIXTURES / "sketches").glob("*.png"))
    references = [*sorted((FIXTURES / "references").glob("*.*")), None]
    return [(s, r, t) for s in sketches for r in references for t in TAG_SETS]


def _key(sketch: Path, reference: Path | None, tags: str) -> str:
    return f"{sketch.name} + {reference.name if reference else '-'} [{tags}]"


def _planned(sketch: Path, reference: Path | None, tags: str) -> dict[str, Any]:
    from cli.plan_cmd import plan_pair

    out = plan_pair(sketch, reference, tags)
    out.pop("inputs")  # absolute paths of this checkout
    return out


def _workflow_hashes() -> dict[str, str]:
    files = sorted((REPO / "workflows").glob("*.json")) + sorted((REPO / "workflows" / "api").glob("*.json"))
    return {str(p.relative_to(REPO)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def _record() -> dict[str, Any]:
    return {"plans": {_key(*p): _planned(*p) for p in _pairs()}, "workflows": _workflow_hashes()}


FLOAT_REL = 1e-9


def _difference(got: Any, want: Any, path: str = "") -> str | None:
    """Where `got` differs from the record (None: the same): floats within FLOAT_REL, all else exactly."""
    if isinstance(want, float) and isinstance(got, float):
        if abs(got - want) <= FLOAT_REL * max(abs(want), abs(got), 1e-12):
            return None
        return f"{path}: {got!r} != {want!r} on record"
    if isinstance(want, dict) and isinstance(got, dict):
        if set(got) != set(want):
            return f"{path}: keys {sorted(set(got) ^ set(want))} differ from the record"
        return next((d for k in sorted(want) if (d := _difference(got[k], want[k], f"{path}/{k}"))), None)
    if isinstance(want, list) and isinstance(got, list):
        if len(got) != len(want):
            return f"{path}: {len(got)} items != {len(want)} on record"
        pairs = enumerate(zip(got, want, strict=True))
        return next((d for i, (g, w) in pairs if (d := _difference(g, w, f"{path}[{i}]"))), None)
    if type(got) is not type(want) or got != want:
        return f"{path}: {got!r} != {want!r} on record"
    return None


def _dumps(obj: Any) -> str:
    return json.dumps(obj, indent=1, sort_keys=True, allow_nan=False) + "\n"


@pytest.fixture(scope="module")
def on_record() -> dict[str, Any]:
    if os.environ.get("M4_RECORD") == "1":
        RECORD.write_text(_dumps(_record()))
    if not RECORD.is_file():
        pytest.fail(f"{RECORD.relative_to(REPO)} is missing: run the suite once with M4_RECORD=1")
    return json.loads(RECORD.read_text())


@pytest.mark.parametrize("pair", _pairs(), ids=lambda p: _key(*p))
def test_plan_is_identical_to_the_record(pair: tuple[Path, Path | None, str], on_record: dict[str, Any]) -> None:
    expected = on_record["plans"].get(_key(*pair))
    assert expected is not None, f"{_key(*pair)} is not on record: re-record with M4_RECORD=1"
    got = json.loads(_dumps(_planned(*pair)))  # as it would be recorded (JSON round trip)
    assert _difference(got, expected) is None, _difference(got, expected)


def test_the_record_comparison_can_fail() -> None:
    rec = {"a": [1, 0.5, "x"], "b": {"c": True}}
    assert _difference(json.loads(json.dumps(rec)), rec) is None
    assert _difference({"a": [1, 0.5 * (1 + 1e-12), "x"], "b": {"c": True}}, rec) is None  # rounding only
    for bad in ({"a": [1, 0.5001, "x"], "b": {"c": True}}, {"a": [1, 0.5, "y"], "b": {"c": True}},
                {"a": [1, 0.5], "b": {"c": True}}, {"a": [1, 0.5, "x"], "b": {"c": 1}}, {"a": [1, 0.5, "x"]}):
        assert _difference(bad, rec) is not None


def test_bundled_workflows_are_identical_to_the_record(on_record: dict[str, Any]) -> None:
    assert _workflow_hashes() == on_record["workflows"]
