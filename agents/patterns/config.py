"""Load and validate patterns.toml and presets.toml; every error names the dotted key."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..policy.data_checks import number_problem, unknown_problem
from .errors import PatternsConfigError

CONFIG_PATH = Path(__file__).with_name("patterns.toml")
PRESETS_PATH = Path(__file__).with_name("presets.toml")

FEATURES = ("onset", "rms", "low", "mid", "high", "centroid", "beat")
SMOOTHED = ("onset", "rms", "low", "mid", "high", "centroid", "chroma")
PATTERNS = ("fractal", "organic", "flowing", "geometric", "voronoi")
TRANSITIONS = ("slerp", "crossfade", "none")

# key -> (lo, hi, is_int)
_AUDIO: dict[str, tuple[float, float, bool]] = {
    "max_duration_s": (1.0, 36000.0, False), "min_sample_rate": (1000, 48000, True),
    "max_sample_rate": (8000, 768000, True), "max_channels": (1, 64, True),
    "min_fps": (0.1, 10.0, False), "max_fps": (10.0, 1000.0, False),
    "window_s": (0.004, 0.2, False), "window_lookahead": (0.0, 0.5, False),
    "analysis_hop_s": (0.001, 0.1, False), "chunk_s": (1.0, 600.0, False),
    "log_compression": (0.0, 1e5, False), "low_max_hz": (20.0, 2000.0, False),
    "mid_max_hz": (200.0, 20000.0, False), "chroma_min_hz": (20.0, 500.0, False),
    "chroma_max_hz": (500.0, 20000.0, False), "centroid_min_hz": (10.0, 1000.0, False),
    "centroid_max_hz": (1000.0, 50000.0, False), "norm_percentile": (50.0, 100.0, False),
    "silence_rms": (0.0, 0.1, False), "onset_subtract_median_s": (0.0, 5.0, False),
}
_BEATS: dict[str, tuple[float, float, bool]] = {
    "min_bpm": (20.0, 300.0, False), "max_bpm": (30.0, 400.0, False), "prior_bpm": (30.0, 300.0, False),
    "prior_octaves": (0.1, 4.0, False), "tightness": (0.0, 1000.0, False), "pulse_release_s": (0.0, 2.0, False),
}
_SMOOTH: dict[str, tuple[float, float, bool]] = {"attack_s": (0.0, 10.0, False), "release_s": (0.0, 10.0, False)}
_RENDER: dict[str, tuple[float, float, bool]] = {
    "min_size": (1, 64, True), "max_size": (64, 16384, True), "max_pixels_per_chunk": (4096, 1 << 28, True),
    "max_frames": (1, 10_000_000, True), "hidden_layers": (1, 16, True), "hidden_width": (2, 256, True),
    "latent_dim": (1, 64, True), "weight_std": (0.01, 10.0, False), "coord_scale": (0.1, 10.0, False),
    "palette_lut_size": (2, 4096, True), "weight_sets": (1, 64, True), "fractal_iterations": (1, 100, True),
    "voronoi_points": (1, 256, True), "transition_ease": (0.0, 50.0, False),
    "beat_snap_frames": (0, 10, True), "switch_min_onset": (0.0, 1.0, False), "noise_grid": (2, 256, True),
    "flow_steps": (1, 32, True),
}
_FIELDS: dict[str, tuple[float, float, bool]] = {
    "max_output_mb": (1.0, 1e6, False), "noise_scale": (0.01, 100.0, False),
    "noise_warp_offset": (-100.0, 100.0, False),
    "kaleido_folds": (1, 64, True), "julia_re": (-2.0, 2.0, False), "julia_im": (-2.0, 2.0, False),
    "julia_orbit": (0.0, 1.0, False), "julia_scale": (0.01, 10.0, False), "escape_radius": (2.0, 1e3, False),
    "trap_sharpness": (0.01, 100.0, False), "flow_dt": (0.0, 5.0, False), "voronoi_orbit": (0.0, 5.0, False),
    "reference_colours": (2, 32, True),
}
_PLOT: dict[str, tuple[float, float, bool]] = {"width": (64, 4096, True), "height": (64, 4096, True)}
_PRESET_NUM: dict[str, tuple[float, float, bool]] = {
    "zoom_gain": (-2.0, 2.0, False), "warp_gain": (-4.0, 4.0, False), "palette_gain": (-4.0, 4.0, False),
    "palette_drift": (-1.0, 1.0, False), "beats_per_switch": (1, 256, True), "transition_s": (0.0, 30.0, False),
    "time_speed": (0.0, 10.0, False),
}
_HEX = re.compile(r"^#[0-9a-fA-F]{6}$")


def _num(data: dict[str, Any], key: str, path: str, spec: tuple[float, float, bool]) -> float:
    lo, hi, is_int = spec
    if key not in data:
        raise PatternsConfigError(f"patterns key {path}: missing")
    problem = number_problem(data[key], lo, hi, integer=is_int, whole_floats=True)
    if problem:
        raise PatternsConfigError(f"patterns key {path}: {problem}")
    return float(data[key])


def _table(data: Any, key: str, path: str) -> dict[str, Any]:
    if not isinstance(data, dict) or key not in data:
        raise PatternsConfigError(f"patterns key {path}: missing")
    v = data[key]
    if not isinstance(v, dict):
        raise PatternsConfigError(f"patterns key {path}: expected a table, got {v!r}")
    return v


def _no_unknown(data: dict[str, Any], known: Any, path: str) -> None:
    bad = unknown_problem(data, known)
    if bad:
        raise PatternsConfigError(f"patterns key {path}.{bad[0]}: {bad[1]}")


def _section(data: dict[str, Any], name: str, spec: dict[str, tuple[float, float, bool]]) -> dict[str, float]:
    table = _table(data, name, name)
    _no_unknown(table, spec, name)
    return {k: _num(table, k, f"{name}.{k}", s) for k, s in spec.items()}


@dataclass(frozen=True)
class PatternsConfig:
    audio: dict[str, float]
    beats: dict[str, float]
    smoothing: dict[str, tuple[float, float]]
    render: dict[str, float]
    plot: dict[str, float]
    fields: dict[str, float]
    palettes: dict[str, tuple[str, ...]]

    def rint(self, key: str) -> int:
        return int(self.render[key])


def _palettes(data: dict[str, Any]) -> dict[str, tuple[str, ...]]:
    table = _table(data, "palettes", "palettes")
    out: dict[str, tuple[str, ...]] = {}
    for name, colours in table.items():
        ok = isinstance(colours, list) and len(colours) >= 2 and all(isinstance(c, str) and _HEX.match(c)
                                                                       for c in colours)
        if not ok:
            raise PatternsConfigError(f"patterns key palettes.{name}: expected a list of >= 2 '#rrggbb' colours")
        out[name] = tuple(colours)
    if not out:
        raise PatternsConfigError("patterns key palettes: at least one palette is needed")
    return out


def validate_config(data: dict[str, Any]) -> PatternsConfig:
    _no_unknown(data, {"version", "audio", "beats", "smoothing", "render", "plot", "fields", "palettes"},
               "patterns")
    audio = _section(data, "audio", _AUDIO)
    beats = _section(data, "beats", _BEATS)
    sm_table = _table(data, "smoothing", "smoothing")
    _no_unknown(sm_table, SMOOTHED, "smoothing")
    smoothing = {}
    for feat in SMOOTHED:
        s = _section(sm_table, feat, _SMOOTH) if feat in sm_table else None
        if s is None:
            raise PatternsConfigError(f"patterns key smoothing.{feat}: missing")
        smoothing[feat] = (s["attack_s"], s["release_s"])
    render = _section(data, "render", _RENDER)
    for lo_key, hi_key, sec, name in (("min_sample_rate", "max_sample_rate", audio, "audio"),
                                      ("min_fps", "max_fps", audio, "audio"),
                                      ("min_size", "max_size", render, "render")):
        if sec[lo_key] > sec[hi_key]:
            raise PatternsConfigError(f"patterns key {name}.{lo_key}: above {name}.{hi_key}")
    if beats["min_bpm"] >= beats["max_bpm"]:
        raise PatternsConfigError("patterns key beats.min_bpm: must be below beats.max_bpm")
    return PatternsConfig(audio, beats, smoothing, render, _section(data, "plot", _PLOT),
                          _section(data, "fields", _FIELDS), _palettes(data))


@dataclass(frozen=True)
class MappingPreset:
    name: str
    description: str
    pattern: str
    palette: str
    z_gains: dict[str, float]
    zoom_feature: str
    warp_feature: str
    palette_feature: str
    layer_freq: tuple[float, ...]
    transition: str
    nums: dict[str, float]


def _choice(table: dict[str, Any], key: str, path: str, allowed: Any) -> str:
    v = table.get(key)
    if v not in allowed:
        raise PatternsConfigError(f"preset key {path}.{key}: expected one of {sorted(allowed)}, got {v!r}")
    return str(v)


def validate_preset(name: str, t: dict[str, Any], palettes: Any, hidden_layers: int) -> MappingPreset:
    path = f"presets.{name}"
    known = {"description", "pattern", "palette", "z_gains", "zoom_feature", "warp_feature", "palette_feature",
             "layer_freq", "transition", *_PRESET_NUM}
    _no_unknown(t, known, path)
    gains = t.get("z_gains")
    if not isinstance(gains, dict) or not gains:
        raise PatternsConfigError(f"preset key {path}.z_gains: expected a table feature = gain")
    _no_unknown(gains, FEATURES, f"{path}.z_gains")
    z_gains = {k: _num(gains, k, f"{path}.z_gains.{k}", (-10.0, 10.0, False)) for k in gains}
    freq = t.get("layer_freq")
    if not isinstance(freq, list) or len(freq) != hidden_layers or not all(
            isinstance(f, int | float) and not isinstance(f, bool) and 0.05 <= f <= 20 for f in freq):
        raise PatternsConfigError(f"preset key {path}.layer_freq: expected {hidden_layers} numbers in [0.05, 20]")
    desc = t.get("description", "")
    if not isinstance(desc, str):
        raise PatternsConfigError(f"preset key {path}.description: expected a string")
    return MappingPreset(
        name=name, description=desc, pattern=_choice(t, "pattern", path, PATTERNS),
        palette=_choice(t, "palette", path, palettes), z_gains=z_gains,
        zoom_feature=_choice(t, "zoom_feature", path, FEATURES),
        warp_feature=_choice(t, "warp_feature", path, FEATURES),
        palette_feature=_choice(t, "palette_feature", path, FEATURES), layer_freq=tuple(float(f) for f in freq),
        transition=_choice(t, "transition", path, TRANSITIONS),
        nums={k: _num(t, k, f"{path}.{k}", s) for k, s in _PRESET_NUM.items()},
    )


def validate_presets(data: dict[str, Any], config: PatternsConfig) -> dict[str, MappingPreset]:
    _no_unknown(data, {"presets"}, "presets")
    table = _table(data, "presets", "presets")
    if not table:
        raise PatternsConfigError("preset key presets: at least one preset is needed")
    return {n: validate_preset(n, _table(table, n, f"presets.{n}"), config.palettes, config.rint("hidden_layers"))
            for n in table}


@lru_cache(maxsize=1)
def default_config() -> PatternsConfig:
    return validate_config(tomllib.loads(CONFIG_PATH.read_text()))


@lru_cache(maxsize=1)
def default_presets() -> dict[str, MappingPreset]:
    return validate_presets(tomllib.loads(PRESETS_PATH.read_text()), default_config())


def get_preset(name: str) -> MappingPreset:
    presets = default_presets()
    if name not in presets:
        raise PatternsConfigError(f"preset: unknown preset {name!r} (known: {', '.join(sorted(presets))})")
    return presets[name]
