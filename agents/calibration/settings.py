"""The calibration family's validated data: tunables.toml (what may move, how far) and calibration.toml (fit settings).

Errors name the key, e.g. "tunables key classify.small_below.step: expected a number in (0, 1], got -1".
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..policy.data_checks import is_number, number_problem
from ..policy.overlay import is_hard_key

HERE = Path(__file__).parent
TUNABLES_PATH = HERE / "tunables.toml"
SETTINGS_PATH = HERE / "calibration.toml"
KINDS = ("threshold", "bound", "amount")
SIGNALS = ("complexity_score", "subject_scale", "line_quality_score", "construction_lines", "anatomy_risk_score")


class CalibrationConfigError(ValueError):
    """tunables.toml or calibration.toml has a missing, mistyped or out-of-range key."""


@dataclass(frozen=True)
class Tunable:
    key: str
    kind: str
    lo: float
    hi: float
    step: float
    signal: str | None = None
    quantile: float | None = None


@dataclass(frozen=True)
class Settings:
    min_runs: int
    min_each_outcome: int
    holdout_fraction: float
    l2_grid: tuple[float, ...]
    cv_folds: int
    newton_iterations: int
    tolerance: float
    probability_floor: float
    bootstrap: int
    confidence: float
    move_confidence: float
    min_gain: float
    max_rounds: int
    interval: float
    seed: int
    jitter: float
    support_share: float


def _num(d: Mapping[str, Any], key: str, path: str, lo: float, hi: float, *, integer: bool = False,
         open_lo: bool = False) -> float:
    v: Any = d.get(key)
    problem = number_problem(v, lo, hi, integer=integer, whole_floats=True, open_lo=open_lo)
    if problem:
        raise CalibrationConfigError(f"{path}.{key}: {problem}")
    return float(v)


def _read(path: Path, what: str) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise CalibrationConfigError(f"{what} file {path}: not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise CalibrationConfigError(f"{what} file {path}: not valid TOML ({exc})") from None


def _policy_value(policy_raw: Mapping[str, Any], key: str) -> Any:
    node: Any = policy_raw
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise CalibrationConfigError(f"tunables key {key}: not a key of the policy")
        node = node[part]
    return node


def parse_tunables(raw: Mapping[str, Any], policy_raw: Mapping[str, Any]) -> dict[str, Tunable]:
    table = raw.get("tunables")
    if not isinstance(table, Mapping) or set(raw) != {"tunables"}:
        raise CalibrationConfigError("tunables: expected one [tunables.\"<dotted key>\"] table per key, nothing else")
    out: dict[str, Tunable] = {}
    for key, entry in table.items():
        path = f"tunables key {key}"
        if not isinstance(entry, Mapping):
            raise CalibrationConfigError(f"{path}: expected a table")
        if is_hard_key(key):
            raise CalibrationConfigError(f"{path}: a hard rule or locked value; it cannot be tunable")
        unknown = sorted(set(entry) - {"kind", "range", "step", "signal", "quantile"})
        if unknown:
            raise CalibrationConfigError(f"{path}.{unknown[0]}: unknown key")
        kind = entry.get("kind")
        if kind not in KINDS:
            raise CalibrationConfigError(f"{path}.kind: expected one of {KINDS}, got {kind!r}")
        marks = policy_raw.get("tunable")
        if not isinstance(marks, Mapping) or key not in marks:
            raise CalibrationConfigError(f"{path}: not marked tunable in the policy's [tunable] table")
        rng: Any = entry.get("range", marks[key])
        numbers = isinstance(rng, list) and all(is_number(v) for v in rng)
        if not (numbers and len(rng) == 2 and rng[0] < rng[1]):
            raise CalibrationConfigError(f"{path}.range: expected [lo, hi] numbers with lo < hi, got {rng!r}")
        p_lo, p_hi = (float(x) for x in marks[key])
        if rng[0] < p_lo - 1e-9 or rng[1] > p_hi + 1e-9:
            raise CalibrationConfigError(f"{path}.range: {rng!r} leaves the policy's tunable range "
                                         f"[{p_lo:g}, {p_hi:g}]")
        current = _policy_value(policy_raw, key)
        is_pair = isinstance(current, list)
        if is_pair != (kind == "bound"):
            raise CalibrationConfigError(f"{path}.kind: {kind!r} does not fit the policy value {current!r}")
        values = current if is_pair else [current]
        if not all(rng[0] - 1e-9 <= float(v) <= rng[1] + 1e-9 for v in values):
            raise CalibrationConfigError(f"{path}.range: {rng!r} must contain the locked value {current!r}")
        step = _num(entry, "step", path, 0.0, float(rng[1] - rng[0]), open_lo=True)
        signal = quantile = None
        if kind == "threshold":
            signal = entry.get("signal")
            if signal not in SIGNALS:
                raise CalibrationConfigError(f"{path}.signal: expected one of {SIGNALS}, got {signal!r}")
            quantile = _num(entry, "quantile", path, 0.0, 1.0)
        out[key] = Tunable(key=key, kind=kind, lo=float(rng[0]), hi=float(rng[1]), step=step, signal=signal,
                           quantile=quantile)
    return out


def check_tables(raw: Mapping[str, Any], sections: Mapping[str, tuple[str, ...]], what: str,
                 *, other_tables: bool) -> None:
    """Each named table present with only its known keys; other_tables=False refuses any other table too."""
    for name, keys in sections.items():
        sec = raw.get(name)
        if not isinstance(sec, Mapping):
            raise CalibrationConfigError(f"{what} key {name}: missing table")
        unknown = sorted(set(sec) - set(keys))
        if unknown:
            raise CalibrationConfigError(f"{what} key {name}.{unknown[0]}: unknown key")
    extra = sorted(set(raw) - set(sections))
    if extra and not other_tables:
        raise CalibrationConfigError(f"{what} key {extra[0]}: unknown table")


def parse_settings(raw: Mapping[str, Any]) -> Settings:
    sections = {"data": ("min_runs", "min_each_outcome", "holdout_fraction"),
                "model": ("l2_grid", "cv_folds", "newton_iterations", "tolerance", "probability_floor"),
                "search": ("bootstrap", "confidence", "move_confidence", "min_gain", "max_rounds", "interval", "seed"),
                "explore": ("jitter", "support_share")}
    check_tables(raw, sections, "calibration", other_tables=True)  # [optuna] is read by optuna_space.py
    d, m, s = raw["data"], raw["model"], raw["search"]
    grid = m.get("l2_grid")
    if not (isinstance(grid, list) and grid and all(is_number(v) and v > 0 for v in grid)):
        raise CalibrationConfigError(f"calibration key model.l2_grid: expected positive numbers, got {grid!r}")
    return Settings(
        min_runs=int(_num(d, "min_runs", "calibration key data", 10, 1e6, integer=True)),
        min_each_outcome=int(_num(d, "min_each_outcome", "calibration key data", 1, 1e6, integer=True)),
        holdout_fraction=_num(d, "holdout_fraction", "calibration key data", 0.05, 0.5),
        l2_grid=tuple(float(v) for v in grid),
        cv_folds=int(_num(m, "cv_folds", "calibration key model", 2, 20, integer=True)),
        newton_iterations=int(_num(m, "newton_iterations", "calibration key model", 1, 1000, integer=True)),
        tolerance=_num(m, "tolerance", "calibration key model", 0.0, 1.0, open_lo=True),
        probability_floor=_num(m, "probability_floor", "calibration key model", 0.0, 0.1, open_lo=True),
        bootstrap=int(_num(s, "bootstrap", "calibration key search", 2, 10000, integer=True)),
        confidence=_num(s, "confidence", "calibration key search", 0.5, 1.0),
        move_confidence=_num(s, "move_confidence", "calibration key search", 0.5, 1.0),
        min_gain=_num(s, "min_gain", "calibration key search", 0.0, 1.0),
        max_rounds=int(_num(s, "max_rounds", "calibration key search", 1, 1000, integer=True)),
        interval=_num(s, "interval", "calibration key search", 0.5, 0.999),
        seed=int(_num(s, "seed", "calibration key search", 0, 2**31, integer=True)),
        jitter=_num(raw["explore"], "jitter", "calibration key explore", 0.0, 0.5, open_lo=True),
        support_share=_num(raw["explore"], "support_share", "calibration key explore", 0.0, 1.0),
    )


def load_tunables(policy_raw: Mapping[str, Any], path: Path | None = None) -> dict[str, Tunable]:
    return parse_tunables(_read(path or TUNABLES_PATH, "tunables"), policy_raw)


@lru_cache(maxsize=4)
def load_settings(path: Path | None = None) -> Settings:
    return parse_settings(_read(path or SETTINGS_PATH, "calibration settings"))
