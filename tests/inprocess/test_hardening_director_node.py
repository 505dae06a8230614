"""Issue 11 item 8 on the node: M4 Animation Director's panel names the inputs it could not trust
(intent_strength NaN here) and an empty sketch, at the top of its data and in its title."""

from __future__ import annotations

import dataclasses
import importlib
import math
from typing import Any

import pytest

from host import records
from host.inprocess import run_node as _run


def _as_pack(record: Any) -> Any:
    """A record of tests/host/records.py as the pack's own class (ComfyUI loads the pack as m4_director)."""
    types = importlib.import_module("m4_director.agents.measure.analysis_types")
    return getattr(types, type(record).__name__)(**dataclasses.asdict(record))


def make_analysis(**overrides: Any) -> Any:
    return _as_pack(records.make_analysis(**overrides))


def make_reference(**overrides: Any) -> Any:
    return _as_pack(records.make_reference(**overrides))


@pytest.fixture(scope="module")
def director(pack):
    return importlib.import_module("m4_director.nodes.director").M4AnimationDirector


def _panel(out) -> dict:
    ui = out.ui if isinstance(out.ui, dict) else out.ui.as_dict()
    [panel] = ui["m4_panel"]
    return panel


def test_the_director_panel_shows_a_nan_intent_strength(director) -> None:
    out = _run(director, analysis=[make_analysis()], reference_report=make_reference(), intent_strength=math.nan)
    panel = _panel(out)
    assert panel["title"] == "M4 plan: 1 warning(s)"
    assert list(panel["data"])[0] == "warnings"
    assert panel["data"]["warnings"][0].startswith("intent_strength was nan: used")


def test_the_director_panel_says_an_empty_sketch(director) -> None:
    empty = make_analysis(empty=True, line_quality="empty", line_quality_score=0.0, object_count=0)
    panel = _panel(_run(director, analysis=[empty], reference_report=make_reference()))
    assert any(w.startswith("the sketch is empty") for w in panel["data"]["warnings"])


def test_a_clean_plan_panel_has_no_warnings_row(director) -> None:
    panel = _panel(_run(director, analysis=[make_analysis()], reference_report=make_reference()))
    assert panel["title"] == "M4 plan" and "warnings" not in panel["data"]
