"""The third-party stand-ins and the object_info snapshot against the real packs' recorded node contracts.

tests/host/standins/real_contracts.json holds what the real IPAdapter_plus and controlnet_aux nodes
declare at the pinned commits (inputs with their types, options, defaults and order; outputs; function).
A stand-in that drifts from it would let the M4 templates validate here and fail on a real install.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
CONTRACTS = json.loads((REPO / "tests" / "host" / "standins" / "real_contracts.json").read_text(encoding="utf-8"))
sys.path.insert(0, str(REPO / "scripts"))
import build_workflows  # noqa: E402

from host import standins  # noqa: E402

NODES = sorted(CONTRACTS["nodes"])


def _plain(value: Any) -> Any:
    """INPUT_TYPES() as JSON would carry it: tuples as lists, dict order kept."""
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def test_the_record_covers_every_stand_in_and_names_its_commit():
    assert sorted(standins.NODE_CLASS_MAPPINGS) == NODES
    for name in NODES:
        pack = CONTRACTS["nodes"][name]["pack"]
        assert len(CONTRACTS["packs"][pack]["commit"]) >= 7, pack


@pytest.mark.parametrize("name", NODES)
def test_stand_in_declares_exactly_the_real_contract(name):
    real = CONTRACTS["nodes"][name]
    cls = standins.NODE_CLASS_MAPPINGS[name]
    declared = _plain(cls.INPUT_TYPES())
    assert json.dumps(declared) == json.dumps(real["input_types"]), f"{name}: inputs (names, order, options) differ"
    assert list(cls.RETURN_TYPES) == real["return_types"]
    assert (list(cls.RETURN_NAMES) if hasattr(cls, "RETURN_NAMES") else None) == real["return_names"]
    assert cls.FUNCTION == real["function"]
    # The function accepts every declared input by name (ComfyUI calls it with keywords).
    code = getattr(cls, real["function"]).__code__
    params = set(code.co_varnames[: code.co_argcount])
    missing = {k for section in real["input_types"].values() for k in section} - params
    assert not missing, f"{name}.{real['function']} does not take {sorted(missing)}"


@pytest.mark.parametrize("name", NODES)
def test_snapshot_matches_the_real_contract(name):
    real = CONTRACTS["nodes"][name]
    expected = [build_workflows._input_entry(k, spec, section == "optional")
                for section in ("required", "optional") for k, spec in real["input_types"].get(section, {}).items()]
    snap = build_workflows.load_snapshot()[name]
    assert snap["inputs"] == expected
    names = real["return_names"] or real["return_types"]
    assert snap["outputs"] == [{"name": n, "type": t} for n, t in zip(names, real["return_types"], strict=True)]
