"""measure.toml: the measure family's constants load, validate with errors naming the key, and are used."""

from __future__ import annotations

import copy
import math
import tomllib
from pathlib import Path
from typing import Any

import pytest

from agents.measure import image_features, line_quality, strokes
from agents.measure.measure_data import (
    DEFAULT_MEASURE_PATH,
    SCHEMA,
    MeasureDataError,
    load_measure_data,
    measure_data,
    parse_measure_data,
    tunable_keys,
)
from agents.measure.unit_interval import clip01
from agents.planning import director_signals


def _raw() -> dict[str, Any]:
    return tomllib.loads(DEFAULT_MEASURE_PATH.read_text())


def test_bundled_file_loads_and_every_key_is_in_range() -> None:
    d = measure_data()
    for section, keys in SCHEMA.items():
        for key, spec in keys.items():
            v = d[section][key]
            assert spec.lo <= v <= spec.hi, f"{section}.{key}"
            assert isinstance(v, int) if spec.integer else isinstance(v, float)


def test_sections_are_read_only() -> None:
    with pytest.raises(TypeError):
        measure_data()["scores"]["broken_scale"] = 1.0  # type: ignore[index]


@pytest.mark.parametrize("path", [f"{s}.{k}" for s, keys in SCHEMA.items() for k in keys][::3])
def test_a_missing_key_is_named(path: str) -> None:
    raw = _raw()
    section, key = path.split(".")
    del raw[section][key]
    with pytest.raises(MeasureDataError, match=f"measure key {path}: missing"):
        parse_measure_data(raw)


@pytest.mark.parametrize("bad", ["x", True, math.nan, 1e9, -1e9])
def test_a_bad_value_is_named_with_its_range(bad: object) -> None:
    raw = _raw()
    raw["scores"]["broken_scale"] = bad
    with pytest.raises(MeasureDataError, match=r"measure key scores.broken_scale: expected a number in \[0.05, 5\]"):
        parse_measure_data(raw)


def test_integer_keys_reject_fractions_and_unknown_keys_fail() -> None:
    raw = _raw()
    raw["strokes"]["min_speck_area"] = 6.5
    with pytest.raises(MeasureDataError, match="strokes.min_speck_area: expected an integer"):
        parse_measure_data(raw)
    raw = _raw()
    raw["scores"]["brokn_scale"] = 0.6
    with pytest.raises(MeasureDataError, match="scores.brokn_scale: unknown key"):
        parse_measure_data(raw)
    raw = _raw()
    raw["extra"] = {}
    with pytest.raises(MeasureDataError, match="measure key extra: unknown key"):
        parse_measure_data(raw)


def test_mixture_weights_must_sum_to_one_and_labels_must_be_ordered() -> None:
    raw = _raw()
    raw["complexity"]["w_length"] = 0.9
    with pytest.raises(MeasureDataError, match="complexity.w_length: .* must sum to 1"):
        parse_measure_data(raw)
    raw = copy.deepcopy(_raw())
    raw["labels"]["structured_at"] = 0.9
    with pytest.raises(MeasureDataError, match="labels.structured_at"):
        parse_measure_data(raw)


def test_file_errors_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(MeasureDataError, match="not found"):
        load_measure_data(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[scores\n")
    with pytest.raises(MeasureDataError, match="not valid TOML"):
        load_measure_data(bad)


def test_tunable_marks() -> None:
    tun = tunable_keys()
    assert "scores.broken_scale" in tun and "labels.clean_at" in tun
    assert "working_size.analysis_side" not in tun  # resolutions are fixed: every length depends on them
    assert all(s.lo < s.hi for s in tun.values())


def test_the_three_working_sides_come_from_one_table() -> None:
    ws = measure_data()["working_size"]
    assert strokes.WORK_SIDE == ws["analysis_side"]
    assert image_features.WORK_SIDE == ws["compare_side"]
    assert line_quality.WORK_SIDE == ws["line_quality_side"]


def test_the_measure_constants_are_read_from_the_data(monkeypatch: pytest.MonkeyPatch) -> None:
    """Moving a key in the data moves the score: the code reads the data, not a copy of its own."""
    import numpy as np

    from agents.measure import visual_analyst

    img = np.full((256, 256), 255, np.uint8)
    img[60:64, 40:200] = 0
    img[150:154, 40:120] = 0
    img[150:154, 130:200] = 0  # one gap
    before = visual_analyst.analyse(img).broken_lines
    raw = _raw()
    raw["scores"]["broken_scale"] = 0.1
    changed = parse_measure_data(raw)
    monkeypatch.setattr(visual_analyst, "measure_data", lambda: changed)
    assert visual_analyst.analyse(img).broken_lines > before


@pytest.mark.parametrize(("x", "want"), [(math.nan, 0.0), (math.inf, 1.0), (-math.inf, 0.0), (-0.5, 0.0),
                                         (1.5, 1.0), (0.25, 0.25)])
def test_one_clip01_for_every_family(x: float, want: float) -> None:
    assert clip01(x) == want
    assert director_signals.clip01 is clip01
