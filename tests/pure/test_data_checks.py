"""agents/policy/data_checks.py: the one "number in its range" / "only known keys" check every data loader
uses, and that each loader still names its key with its own prefix."""

from __future__ import annotations

import math

import pytest

from agents.policy.data_checks import is_number, number_problem, unknown_problem


@pytest.mark.parametrize("v", [0, 1.5, -3, 10**6])
def test_finite_ints_and_floats_are_numbers(v: float) -> None:
    assert is_number(v)


@pytest.mark.parametrize("v", [True, False, math.nan, math.inf, -math.inf, "1", None, [1]])
def test_bools_non_finite_and_non_numbers_are_not(v: object) -> None:
    assert not is_number(v)


def test_number_problem_names_the_range_and_the_value() -> None:
    assert number_problem(0.5, 0, 1) is None
    assert number_problem(1.5, 0, 1) == "expected a number in [0, 1], got 1.5"
    assert number_problem(0, 0, 1, open_lo=True) == "expected a number in (0, 1], got 0"
    assert number_problem(True, 0, 1) == "expected a number in [0, 1], got True"
    assert number_problem(math.nan, 0, 1) == "expected a number in [0, 1], got nan"


def test_integer_keys_take_toml_integers_and_whole_floats_only_when_asked() -> None:
    assert number_problem(3, 1, 5, integer=True) is None
    assert number_problem(3.0, 1, 5, integer=True) == "expected an integer in [1, 5], got 3.0"
    assert number_problem(3.0, 1, 5, integer=True, whole_floats=True) is None
    assert number_problem(3.5, 1, 5, integer=True, whole_floats=True) == "expected an integer in [1, 5], got 3.5"


def test_unknown_problem_gives_the_first_unknown_key_and_the_known_ones() -> None:
    assert unknown_problem({"a": 1}, ("a", "b")) is None
    assert unknown_problem({"z": 1, "c": 2, "a": 3}, ("a", "b")) == ("c", "unknown key (expected one of ['a', 'b'])")


def test_each_loader_keeps_its_prefix() -> None:
    import tomllib

    from agents.inbetween.config import InbetweenConfigError, validate
    from agents.measure.measure_data import DEFAULT_MEASURE_PATH, MeasureDataError, parse_measure_data
    from agents.patterns.config import PatternsConfigError
    from agents.patterns.config import _num as patterns_num

    raw = tomllib.loads(DEFAULT_MEASURE_PATH.read_text())
    raw["labels"]["clean_at"] = 7.0
    bad = r"^measure key labels\.clean_at: expected a number in \[0, 1\], got 7\.0$"
    with pytest.raises(MeasureDataError, match=bad):
        parse_measure_data(raw)
    with pytest.raises(PatternsConfigError, match=r"^patterns key a\.b: expected an integer in \[1, 4\], got 2\.5$"):
        patterns_num({"b": 2.5}, "b", "a.b", (1, 4, True))
    with pytest.raises(InbetweenConfigError, match=r"^inbetween key "):
        validate({"nonsense": {}})
