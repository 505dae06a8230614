"""Load and validate agents/guidance/guidance.toml: the guidance nodes' options and the math's tunables.

Every option is declared once here (name, kind, allowed values) with its default and range from the
data file; the three guidance nodes build their inputs from `option_specs()` and parse what they get
with `parse_options()`. Errors name the key: "guidance key options.cfg_min.default: ...".
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from ..policy.data_checks import number_problem
from .errors import GuidanceInputError
from .schedules import SCHEDULE_NAMES

DATA_PATH = Path(__file__).with_name("guidance.toml")

# The live per-call event the nodes send and the web extension listens to (web/m4_director.js spells
# it too; a test keeps them equal).
EVENT = "m4.guidance"

Kind = Literal["float", "bool", "choice", "text"]
BASE_SOURCES: tuple[str, ...] = ("sampler cfg", "prompt analysis")
EARLY_STOP_RULES: tuple[str, ...] = ("denoised change", "residual")
GAP_MEASURES: tuple[str, ...] = ("residual", "estimate")
EARLY_STOP_ESTIMATES: tuple[str, ...] = ("denoised", "half step", "spread matched")  # controller.final_estimate

# name -> (kind, allowed choices, optional input). Order = the nodes' input order (saved workflows
# address widgets by position: append new options at the end, optional).
_OPTIONS: dict[str, tuple[Kind, tuple[str, ...], bool]] = {
    "schedule": ("choice", SCHEDULE_NAMES, False),
    "cfg_min": ("float", (), False),
    "cfg_max": ("float", (), False),
    "skip_below": ("float", (), False),
    "quality_adjust": ("bool", (), False),
    "agreement_cutoff": ("float", (), False),
    "interval_sigma_lo": ("float", (), False),
    "interval_sigma_hi": ("float", (), False),
    "early_stop": ("bool", (), False),
    "early_stop_tolerance": ("float", (), False),
    "base_source": ("choice", BASE_SOURCES, False),
    "prompt": ("text", (), True),
    "cap_at_base": ("bool", (), True),
    "early_stop_rule": ("choice", EARLY_STOP_RULES, True),
    "gap_cutoff": ("float", (), True),
    "preset": ("choice", ("none", "gap_residual"), True),
    "early_stop_estimate": ("choice", EARLY_STOP_ESTIMATES, True),
    "gap_measure": ("choice", GAP_MEASURES, True),
}
OPTION_NAMES: tuple[str, ...] = tuple(_OPTIONS)

_TUNABLE_INTS = frozenset({"early_stop_patience", "early_stop_residual_patience", "gap_close_calls",
                           "gap_wait_lookahead", "early_stop_residual_unguided"})
TUNABLE_NAMES: tuple[str, ...] = (
    "skip_epsilon", "early_stop_patience", "early_stop_min_fraction", "quality_adj_min", "quality_adj_max",
    "quality_agree_lo", "quality_agree_hi", "quality_spike_tol", "quality_ema", "prompt_base_simple",
    "prompt_base_complex", "gap_peak_fraction", "gap_wait_margin", "gap_close_calls",
    "gap_wait_lookahead", "gap_effect_floor", "early_stop_residual_patience", "early_stop_residual_unguided",
    "early_stop_residual_history",
)


@dataclass(frozen=True)
class OptionSpec:
    name: str
    kind: Kind
    default: Any
    lo: float | None = None
    hi: float | None = None
    step: float | None = None
    choices: tuple[str, ...] = ()
    optional: bool = False

    def check(self, value: Any) -> Any:
        """The value if it is allowed, else a GuidanceInputError naming the option."""
        if self.kind == "bool":
            if not isinstance(value, bool):
                raise GuidanceInputError(f"{self.name}: expected true or false, got {value!r}")
            return value
        if self.kind == "choice":
            if value not in self.choices:
                raise GuidanceInputError(
                    f"{self.name}: unknown value {value!r}; choose one of {', '.join(self.choices)}")
            return value
        if self.kind == "text":
            if not isinstance(value, str):
                raise GuidanceInputError(f"{self.name}: expected text, got {type(value).__name__}")
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise GuidanceInputError(f"{self.name}: expected a finite number, got {value!r}")
        lo = -math.inf if self.lo is None else self.lo
        hi = math.inf if self.hi is None else self.hi
        if not (lo <= value <= hi):
            raise GuidanceInputError(f"{self.name}: must be in [{self.lo:g}, {self.hi:g}], got {value}")
        return float(value)


@dataclass(frozen=True)
class GuidanceData:
    options: Mapping[str, OptionSpec]
    tunables: Mapping[str, float]
    template_preset: Mapping[str, Any]  # the adaptive template's options away from the defaults
    presets: Mapping[str, Mapping[str, Any]]  # the `preset` option's choices -> the options they set

    def defaults(self) -> dict[str, Any]:
        return {k: s.default for k, s in self.options.items()}


def _range(key: str, raw: Any) -> tuple[float, float]:
    if (not isinstance(raw, list) or len(raw) != 2 or not all(isinstance(v, (int, float)) for v in raw)
            or isinstance(raw[0], bool) or raw[0] > raw[1]):
        raise GuidanceInputError(f"guidance key {key}: expected [min, max] numbers with min <= max, got {raw!r}")
    return float(raw[0]), float(raw[1])


def _option(name: str, raw: Any) -> OptionSpec:
    kind, choices, optional = _OPTIONS[name]
    key = f"options.{name}"
    if not isinstance(raw, dict) or "default" not in raw:
        raise GuidanceInputError(f"guidance key {key}: needs a table with a default")
    allowed = {"default", "range", "step"} if kind == "float" else {"default"}
    extra = set(raw) - allowed
    if extra:
        raise GuidanceInputError(f"guidance key {key}.{sorted(extra)[0]}: unknown key")
    lo = hi = step = None
    if kind == "float":
        if "range" not in raw or "step" not in raw:
            raise GuidanceInputError(f"guidance key {key}: a number option needs range and step")
        lo, hi = _range(f"{key}.range", raw["range"])
        step = raw["step"]
        if isinstance(step, bool) or not isinstance(step, (int, float)) or step <= 0:
            raise GuidanceInputError(f"guidance key {key}.step: expected a positive number, got {step!r}")
    spec = OptionSpec(name, kind, None, lo, hi, None if step is None else float(step), choices, optional)
    try:
        default = spec.check(raw["default"])
    except GuidanceInputError as e:
        raise GuidanceInputError(f"guidance key {key}.default: {str(e).split(': ', 1)[1]}") from None
    return OptionSpec(name, kind, default, lo, hi, spec.step, choices, optional)


def _tunable(name: str, raw: Any) -> float:
    key = f"tunables.{name}"
    if not isinstance(raw, dict) or set(raw) != {"value", "range"}:
        raise GuidanceInputError(f"guidance key {key}: needs exactly value and range")
    lo, hi = _range(f"{key}.range", raw["range"])
    v = raw["value"]
    problem = number_problem(v, lo, hi)
    if problem:
        raise GuidanceInputError(f"guidance key {key}.value: {problem}")
    if name in _TUNABLE_INTS and not isinstance(v, int):
        raise GuidanceInputError(f"guidance key {key}.value: expected an integer, got {v!r}")
    return v


def parse_guidance_data(raw: Mapping[str, Any]) -> GuidanceData:
    """Validate a parsed guidance.toml; every missing, unknown or out-of-range key is named."""
    for section in set(raw) - {"options", "tunables", "template_preset", "presets"}:
        raise GuidanceInputError(f"guidance key {section}: unknown section")
    opts, tun = raw.get("options", {}), raw.get("tunables", {})
    for group, given, known in (("options", opts, OPTION_NAMES), ("tunables", tun, TUNABLE_NAMES)):
        for k in given:
            if k not in known:
                raise GuidanceInputError(f"guidance key {group}.{k}: unknown key")
        for k in known:
            if k not in given:
                raise GuidanceInputError(f"guidance key {group}.{k}: missing")
    tunables = {k: _tunable(k, tun[k]) for k in TUNABLE_NAMES}
    for lo, hi in (("quality_agree_lo", "quality_agree_hi"), ("prompt_base_simple", "prompt_base_complex")):
        if tunables[lo] >= tunables[hi]:
            raise GuidanceInputError(f"guidance key tunables.{lo}: must be below tunables.{hi}")
    options = {k: _option(k, opts[k]) for k in OPTION_NAMES}
    preset = _option_values("template_preset", raw.get("template_preset", {}), options)
    named = raw.get("presets", {})
    choices = options["preset"].choices
    for name in set(named) ^ {c for c in choices if c != "none"}:
        raise GuidanceInputError(f"guidance key presets.{name}: presets and the preset option's choices differ")
    presets = {k: MappingProxyType(_option_values(f"presets.{k}", v, options)) for k, v in named.items()}
    return GuidanceData(MappingProxyType(options), MappingProxyType(tunables), MappingProxyType(preset),
                        MappingProxyType(presets))


def _option_values(key: str, raw: Any, options: Mapping[str, OptionSpec]) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise GuidanceInputError(f"guidance key {key}: expected a table of option values")
    out: dict[str, Any] = {}
    for k, v in raw.items():
        if k not in options or k == "preset":
            raise GuidanceInputError(f"guidance key {key}.{k}: not a guidance option")
        try:
            out[k] = options[k].check(v)
        except GuidanceInputError as e:
            raise GuidanceInputError(f"guidance key {key}.{k}: {str(e).split(': ', 1)[1]}") from None
    return out


def load_guidance_data(path: Path = DATA_PATH) -> GuidanceData:
    try:
        raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise GuidanceInputError(f"guidance data {Path(path).name}: not valid TOML ({e})") from None
    return parse_guidance_data(raw)


@lru_cache(maxsize=1)
def guidance_data() -> GuidanceData:
    """The shipped data, loaded once."""
    return load_guidance_data()


def option_specs() -> tuple[OptionSpec, ...]:
    return tuple(guidance_data().options.values())


def tunable(name: str) -> float:
    return guidance_data().tunables[name]


def parse_options(values: Mapping[str, Any]) -> dict[str, Any]:
    """Node inputs -> every option, checked; options missing from `values` take their default (so
    workflows saved before an option existed keep today's behaviour). Unknown names raise."""
    specs = guidance_data().options
    unknown = set(values) - set(specs)
    if unknown:
        raise GuidanceInputError(f"{sorted(unknown)[0]}: not a guidance option")
    out = {name: spec.check(values[name]) if name in values else spec.default for name, spec in specs.items()}
    if out["preset"] != "none":
        out.update(guidance_data().presets[out["preset"]])
    return out
