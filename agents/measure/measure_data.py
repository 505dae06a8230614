"""Load and validate agents/measure/measure.toml: the measure family's constants, each with its range.

SCHEMA below is the one list of what the file holds: every key's allowed range, whether it is an
integer, and whether calibration may tune it (`tunable`) or it is fixed (a resolution, a unit, a
pixel-grid fact). Errors name the key, e.g. "measure key scores.broken_scale: expected a number in
[0.05, 5], got 'x'". Unknown and missing keys fail too.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ..policy.data_checks import number_problem, unknown_problem

DEFAULT_MEASURE_PATH = Path(__file__).with_name("measure.toml")


@dataclass(frozen=True)
class KeySpec:
    """One key's allowed range, integer-ness and whether calibration may move it."""

    lo: float
    hi: float
    tunable: bool = True
    integer: bool = False


def _t(lo: float, hi: float) -> KeySpec:
    return KeySpec(lo, hi, tunable=True)


def _fixed(lo: float, hi: float, integer: bool = False) -> KeySpec:
    return KeySpec(lo, hi, tunable=False, integer=integer)


def _ti(lo: float, hi: float) -> KeySpec:
    return KeySpec(lo, hi, tunable=True, integer=True)


_UNIT = _t(0.0, 1.0)
_WEIGHT = _t(0.0, 2.0)

SCHEMA: dict[str, dict[str, KeySpec]] = {
    "working_size": {"analysis_side": _fixed(64, 4096, True), "compare_side": _fixed(64, 4096, True),
                     "line_quality_side": _fixed(64, 4096, True), "min_short_side": _fixed(4, 256, True)},
    "ink": {"ink_floor": _t(0.01, 0.5), "noise_sigmas": _t(1.0, 20.0), "paper_shrink": _fixed(1, 16, True),
            "paper_close_px": _ti(3, 63), "paper_blur_sigma": _t(0.5, 20.0), "fill_floor": _t(0.1, 0.95)},
    "strokes": {
        "faint_ratio": _t(0.1, 0.95), "main_ink_percentile": _t(50.0, 100.0), "min_speck_area": _ti(1, 100),
        "empty_ink_share": _t(0.0, 0.01), "empty_skeleton_px": _ti(1, 1000), "spur_gain": _t(0.0, 5.0),
        "min_spur_px": _ti(0, 20), "gap_radius_widths": _t(0.5, 10.0), "gap_radius_min_px": _t(1.0, 50.0),
        "gap_radius_max_side": _t(0.005, 0.2), "same_stroke_radii": _t(1.0, 20.0),
        "short_fragment_side": _t(0.005, 0.3), "group_radius_side": _t(0.005, 0.2),
        "object_min_share": _UNIT, "taper_zone_widths": _t(0.0, 10.0), "taper_zone_min_px": _t(0.0, 30.0),
    },
    "rough": {
        "tensor_sigma_widths": _t(0.2, 3.0), "tensor_sigma_min_px": _t(0.5, 5.0),
        "tensor_sigma_max_px": _t(1.0, 10.0), "parallel_deg": _t(2.0, 45.0),
        "overdraw_gap_widths": _t(0.5, 10.0), "overdraw_max_px": _t(2.0, 40.0),
        "overdraw_peak": _UNIT, "overdraw_dip": _UNIT, "grain_small_px": _ti(1, 5),
        "grain_large_px": _ti(3, 20), "hatch_straightness": _t(0.01, 1.0), "hatch_min_len_widths": _t(0.5, 20.0),
        "hatch_max_len_side": _t(0.01, 0.5), "hatch_spacing_widths": _t(1.0, 20.0),
        "hatch_spacing_min_px": _t(1.0, 40.0), "hatch_min_group": _ti(2, 20), "wobble_fine_sigma": _fixed(0.5, 4.0),
        "wobble_coarse_sigma": _t(2.0, 30.0), "wobble_min_len_sigmas": _t(1.0, 20.0),
        "taper_min_half_px": _t(0.5, 10.0), "taper_width_ratio": _UNIT, "taper_ink_ratio": _UNIT,
        "solid_ink": _t(0.5, 1.0), "solid_radius_px": _ti(1, 4),
    },
    "scores": {"broken_end_weight": _t(0.0, 2.0), "broken_scale": _t(0.05, 5.0),
               "construction_gain": _t(0.1, 10.0), "specks_per100_full": _t(0.1, 20.0),
               "ragged_from": _t(0.8, 2.0), "ragged_span": _t(0.05, 2.0)},
    "rough_scores": {
        "overdraw_from": _UNIT, "overdraw_span": _t(0.01, 1.0), "grain_from": _UNIT, "grain_span": _t(0.01, 1.0),
        "darkness_from": _UNIT, "darkness_span": _t(0.05, 1.0), "texture_w_grain": _UNIT, "texture_w_light": _UNIT,
        "hatching_full": _t(0.01, 1.0), "wobble_from": _t(0.0, 3.0), "wobble_span": _t(0.01, 3.0),
        "heavy_from": _t(0.001, 0.2), "heavy_span": _t(0.001, 0.2),
        "solid_from": _UNIT, "solid_span": _t(0.05, 1.0),
    },
    "line_quality_weights": {k: _WEIGHT for k in ("broken", "construction", "width", "specks", "ragged",
                                                  "overdrawn_strokes", "graphite_texture", "hatching",
                                                  "line_wobble", "heavy_strokes")},
    "labels": {"clean_at": _UNIT, "structured_at": _UNIT, "complex_at": _UNIT},
    "complexity": {"w_length": _UNIT, "w_junctions": _UNIT, "w_objects": _UNIT,
                   "length_ratio_from": _t(0.0, 5.0), "length_ratio_span": _t(0.1, 10.0),
                   "junctions_per100_full": _t(0.1, 10.0), "objects_span": _t(0.5, 20.0)},
    "structural_anatomy": {"w_line_quality": _UNIT, "w_complexity": _UNIT, "w_construction": _UNIT,
                           "broken_reason_above": _UNIT, "construction_reason_above": _UNIT},
    "notes": {"broken_fix_at": _UNIT, "ragged_fix_at": _UNIT, "consistency_fix_below": _UNIT,
              "small_subject_below": _UNIT, "construction_remove_at": _UNIT, "specks_remove_at": _ti(1, 1000),
              "consistency_keep_at": _UNIT, "rough_fix_at": _UNIT},
    "pose_risk": {"min_confidence": _t(0.0, 0.5), "asymmetry_tolerance": _t(0.05, 1.0),
                  "asymmetry_from": _t(0.0, 0.5), "torso_ratio_min": _t(0.0, 2.0), "torso_ratio_max": _t(1.0, 10.0),
                  "w_missing": _WEIGHT, "w_asymmetry": _WEIGHT, "w_low_confidence": _WEIGHT, "w_proportion": _WEIGHT,
                  "per_extra_person": _t(0.0, 0.5), "medium_at": _UNIT, "high_at": _UNIT},
    "line_art": {
        "paper_percentile": _t(50.0, 100.0), "ink_contrast": _t(0.02, 0.9), "broken_rate": _t(0.1, 50.0),
        "small_len_widths": _t(0.5, 20.0), "small_len_min_px": _t(1.0, 50.0), "small_area_widths2": _t(0.0, 5.0),
        "gap_radius_widths": _t(0.5, 30.0), "gap_radius_min_px": _t(1.0, 100.0),
        "dot_radius_widths": _t(0.5, 20.0), "dot_radius_min_px": _t(1.0, 50.0), "dotted_share": _t(0.01, 1.0),
        "fringe_chroma": _t(0.01, 1.0), "jitter_min_points": _ti(8, 1000), "jitter_fine_sigma": _fixed(0.5, 3.0),
        "jitter_sigma": _t(1.5, 20.0), "jitter_floor": _t(0.0, 2.0), "jitter_span": _t(0.05, 5.0),
        "stray_count": _t(0.5, 100.0),
    },
}

# Groups of weights that must sum to 1 (a mixture), checked after the ranges.
WEIGHT_SUMS: dict[str, tuple[str, ...]] = {
    "complexity": ("w_length", "w_junctions", "w_objects"),
    "structural_anatomy": ("w_line_quality", "w_complexity", "w_construction"),
    "rough_scores": ("texture_w_grain", "texture_w_light"),
}


class MeasureDataError(ValueError):
    """measure.toml is missing a key, has a wrong type or a value outside its range."""


def _value(section: Mapping[str, Any], key: str, path: str, spec: KeySpec) -> float | int:
    if key not in section:
        raise MeasureDataError(f"measure key {path}: missing")
    v = section[key]
    problem = number_problem(v, spec.lo, spec.hi, integer=spec.integer)
    if problem:
        raise MeasureDataError(f"measure key {path}: {problem}")
    return int(v) if spec.integer else float(v)


def _no_unknown(data: Mapping[str, Any], known: Mapping[str, Any], prefix: str) -> None:
    bad = unknown_problem(data, known)
    if bad:
        raise MeasureDataError(f"measure key {prefix}{bad[0]}: {bad[1]}")


@dataclass(frozen=True)
class MeasureData:
    """The validated constants: sections are read-only {key: number} mappings."""

    sections: Mapping[str, Mapping[str, Any]]
    source: str

    def __getitem__(self, section: str) -> Mapping[str, Any]:
        return self.sections[section]


def parse_measure_data(raw: Mapping[str, Any], source: str = "<data>") -> MeasureData:
    """Validate a parsed measure.toml; every error names the key."""
    _no_unknown(raw, SCHEMA, "")
    sections: dict[str, Mapping[str, Any]] = {}
    for name, keys in SCHEMA.items():
        table = raw.get(name)
        if not isinstance(table, dict):
            raise MeasureDataError(f"measure key {name}: {'missing' if table is None else 'expected a table'}")
        _no_unknown(table, keys, f"{name}.")
        sections[name] = MappingProxyType({k: _value(table, k, f"{name}.{k}", spec) for k, spec in keys.items()})
    for name, group in WEIGHT_SUMS.items():
        total = sum(sections[name][k] for k in group)
        if abs(total - 1.0) > 1e-6:
            raise MeasureDataError(f"measure key {name}.{group[0]}: {', '.join(group)} must sum to 1, got {total:g}")
    lab = sections["labels"]
    if lab["structured_at"] > lab["clean_at"]:
        raise MeasureDataError("measure key labels.structured_at: must not exceed labels.clean_at")
    pr = sections["pose_risk"]
    if pr["medium_at"] > pr["high_at"]:
        raise MeasureDataError("measure key pose_risk.medium_at: must not exceed pose_risk.high_at")
    return MeasureData(MappingProxyType(sections), source)


def load_measure_data(path: str | Path | None = None) -> MeasureData:
    """Read and validate a measure data file (default: the bundled measure.toml)."""
    p = Path(path) if path is not None else DEFAULT_MEASURE_PATH
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MeasureDataError(f"measure data file not found: {p.name}") from None
    except tomllib.TOMLDecodeError as e:
        raise MeasureDataError(f"measure data {p.name}: not valid TOML ({e})") from None
    return parse_measure_data(raw, p.name)


@lru_cache(maxsize=1)
def measure_data() -> MeasureData:
    """The bundled, validated measure data (read once)."""
    return load_measure_data()


def tunable_keys() -> dict[str, KeySpec]:
    """Every key calibration may move, as "section.key" -> its spec."""
    return {f"{s}.{k}": spec for s, keys in SCHEMA.items() for k, spec in keys.items() if spec.tunable}
