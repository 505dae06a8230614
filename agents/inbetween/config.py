"""Load and validate agents/inbetween/inbetween.toml; every error names the key and its range."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ..policy.data_checks import number_problem

DEFAULT_PATH = Path(__file__).with_name("inbetween.toml")

# section -> key -> (low, high, is_integer)
_SCHEMA: dict[str, dict[str, tuple[float, float, bool]]] = {
    "limits": {"max_length": (2, 100000, True), "max_side": (16, 16384, True), "chunk_frames": (1, 256, True)},
    "ink": {"threshold": (0.05, 0.95, False), "min_contrast": (0.01, 0.9, False),
            "blank_ink_share": (0.0, 0.1, False), "dt_cap": (2.0, 255.0, False)},
    "flow": {"dis_preset": (0, 2, True), "farneback_pyr_scale": (0.1, 0.9, False),
             "farneback_levels": (1, 10, True), "farneback_winsize": (3, 101, True),
             "farneback_iterations": (1, 50, True), "farneback_poly_n": (5, 7, True),
             "farneback_poly_sigma": (0.5, 3.0, False), "near_key_bias": (0.0, 50.0, False),
             "residual_blur": (0.0, 20.0, False)},
    "line": {"centre_threshold": (0.1, 5.0, False), "gap_close": (0, 5, True), "seam_overlap": (0, 20, True)},
    "mask": {"soft_min": (0.0, 1.0, False), "soft_max": (0.0, 1.0, False), "soft_gamma": (0.1, 10.0, False)},
    "report": {"grey_low": (0.0, 1.0, False), "grey_high": (0.0, 1.0, False),
               "unsafe_chamfer_factor": (0.0, 100.0, False), "unsafe_ink_ratio_low": (0.0, 1.0, False),
               "unsafe_ink_ratio_high": (1.0, 100.0, False), "unsafe_grey_share": (0.0, 1.0, False),
               "unsafe_broken": (0.0, 1.0, False), "unsafe_dotted": (0.0, 1.0, False)},
}


class InbetweenConfigError(ValueError):
    """A bad key in the imputer's data file."""


@dataclass(frozen=True)
class InbetweenConfig:
    """The validated tunables, section by section (read-only mappings)."""

    limits: Mapping[str, Any]
    ink: Mapping[str, Any]
    flow: Mapping[str, Any]
    line: Mapping[str, Any]
    mask: Mapping[str, Any]
    report: Mapping[str, Any]


def _value(section: str, key: str, raw: object) -> float | int:
    low, high, integer = _SCHEMA[section][key]
    problem = number_problem(raw, low, high, integer=integer)
    if problem:
        raise InbetweenConfigError(f"inbetween key {section}.{key}: {problem}")
    number = float(raw)  # type: ignore[arg-type]
    return int(number) if integer else number


def validate(data: Mapping[str, Any]) -> InbetweenConfig:
    """Check every section and key (unknown or missing ones fail) and the cross-key orderings."""
    unknown = set(data) - set(_SCHEMA)
    if unknown:
        raise InbetweenConfigError(f"inbetween key {sorted(unknown)[0]}: unknown section")
    sections: dict[str, MappingProxyType[str, Any]] = {}
    for section, keys in _SCHEMA.items():
        raw = data.get(section)
        if not isinstance(raw, Mapping):
            raise InbetweenConfigError(f"inbetween key {section}: missing section")
        extra = set(raw) - set(keys)
        if extra:
            raise InbetweenConfigError(f"inbetween key {section}.{sorted(extra)[0]}: unknown key")
        values = {}
        for key in keys:
            if key not in raw:
                raise InbetweenConfigError(f"inbetween key {section}.{key}: missing")
            values[key] = _value(section, key, raw[key])
        sections[section] = MappingProxyType(values)
    if sections["mask"]["soft_min"] > sections["mask"]["soft_max"]:
        raise InbetweenConfigError("inbetween key mask.soft_min: must not exceed mask.soft_max")
    if sections["report"]["grey_low"] >= sections["report"]["grey_high"]:
        raise InbetweenConfigError("inbetween key report.grey_low: must be below report.grey_high")
    if sections["flow"]["farneback_poly_n"] not in (5, 7):
        raise InbetweenConfigError("inbetween key flow.farneback_poly_n: expected 5 or 7")
    return InbetweenConfig(**sections)


def load_config(path: str | Path) -> InbetweenConfig:
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise InbetweenConfigError(f"inbetween file {Path(path).name}: not valid TOML ({exc})") from exc
    return validate(data)


@lru_cache(maxsize=1)
def default_config() -> InbetweenConfig:
    return load_config(DEFAULT_PATH)
