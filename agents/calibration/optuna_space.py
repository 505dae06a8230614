"""The Optuna back end's data: its settings ([optuna] in calibration.toml), the search space (each tunable's trust
region inside its declared range, a bounds pair as two ends), policy <-> trial parameters, and the policies the
log's runs were planned with (the warm start). No optuna import here: this module loads without optuna."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..policy import PolicyError, parse_policy
from .dataset import Record
from .search import Value, get_key, set_key
from .settings import SETTINGS_PATH, CalibrationConfigError, Tunable, _num, _read

STUDY_FILE = "m4_calibration_optuna.sqlite3"  # beside the run log, in the user's folder; never another name
_KEYS = ("n_trials", "seed", "startup_trials")
_TOL = 1e-9


@dataclass(frozen=True)
class OptunaSettings:
    n_trials: int  # new trials per calibration (the warm-started ones come on top)
    seed: int  # the sampler's seed: the same log gives the same study
    startup_trials: int  # random trials before TPE models the space (the warm-started ones count)


def parse_optuna_settings(raw: Mapping[str, Any]) -> OptunaSettings:
    sec = raw.get("optuna")
    if not isinstance(sec, Mapping):
        raise CalibrationConfigError("calibration key optuna: missing table")
    unknown = sorted(set(sec) - set(_KEYS))
    if unknown:
        raise CalibrationConfigError(f"calibration key optuna.{unknown[0]}: unknown key")
    path = "calibration key optuna"
    return OptunaSettings(n_trials=int(_num(sec, "n_trials", path, 1, 10000, integer=True)),
                          seed=int(_num(sec, "seed", path, 0, 2**31, integer=True)),
                          startup_trials=int(_num(sec, "startup_trials", path, 1, 1000, integer=True)))


def load_optuna_settings(path: Path | None = None) -> OptunaSettings:
    return parse_optuna_settings(_read(path or SETTINGS_PATH, "calibration settings"))


def study_path(log_path: Path) -> Path:
    """The study's SQLite file: a fixed name beside the run log (no part of it comes from input)."""
    return Path(log_path).expanduser().resolve().parent / STUDY_FILE


def _ends(key: str, value: Value) -> list[tuple[str, float]]:
    if isinstance(value, list):
        return [(f"{key}[{i}]", float(v)) for i, v in enumerate(value)]
    return [(key, float(value))]


def search_space(start_raw: Mapping[str, Any], tunables: Mapping[str, Tunable]) -> dict[str, tuple[float, float]]:
    """{parameter: (low, high)}: every tunable's trust region (locked value +- step) clipped to its declared
    range; a bounds pair is two parameters, `<key>[0]` and `<key>[1]`."""
    space: dict[str, tuple[float, float]] = {}
    for key, t in tunables.items():
        for name, v in _ends(key, get_key(start_raw, key)):
            space[name] = (max(t.lo, v - t.step), min(t.hi, v + t.step))
    return space


def free_space(start_raw: Mapping[str, Any], tunables: Mapping[str, Tunable]) -> dict[str, tuple[float, float]]:
    """The search space without the parameters the policy pins (e.g. a case's CFG floor, which must stay
    the global minimum): a parameter is searched when moving it alone to either end still validates."""
    locked = {name: float(v) for key in tunables for name, v in _ends(key, get_key(start_raw, key))}
    out: dict[str, tuple[float, float]] = {}
    for name, (lo, hi) in search_space(start_raw, tunables).items():
        for end in (lo, hi):
            if abs(end - locked[name]) <= _TOL:  # the locked value always validates: probe a real move
                continue
            try:
                parse_policy(policy_from_params(start_raw, tunables, {**locked, name: end}), source="<probe>")
            except PolicyError:
                continue
            out[name] = (lo, hi)
            break
    return out


def policy_from_params(start_raw: Mapping[str, Any], tunables: Mapping[str, Tunable],
                       params: Mapping[str, float]) -> dict[str, Any]:
    """The policy a trial stands for: each value rounded to 6 places inside its trust region, a pair's ends
    in order (lower first); a parameter not given keeps the locked value."""
    raw = copy.deepcopy(dict(start_raw))
    space = search_space(start_raw, tunables)
    locked = {name: v for key in tunables for name, v in _ends(key, get_key(start_raw, key))}

    def clip(name: str) -> float:
        lo, hi = space[name]
        return round(min(max(float(params.get(name, locked[name])), lo), hi), 6)

    for key in tunables:
        current = get_key(start_raw, key)
        if isinstance(current, list):
            ends = sorted(clip(f"{key}[{i}]") for i in range(len(current)))
            set_key(raw, key, ends)
        else:
            set_key(raw, key, clip(key))
    return raw


def params_from_values(start_raw: Mapping[str, Any], tunables: Mapping[str, Tunable],
                       moved: Mapping[str, Any]) -> dict[str, float] | None:
    """The trial parameters of the locked policy with `moved` (dotted key -> value) applied; None when a moved
    value is not one of the searched tunables or lies outside the (free) search space."""
    space = free_space(start_raw, tunables)
    locked = {name: float(v) for key in tunables for name, v in _ends(key, get_key(start_raw, key))}
    params = {name: locked[name] for name in space}
    for key, value in moved.items():
        if key not in tunables:
            return None
        current = get_key(start_raw, key)
        if isinstance(current, list) != isinstance(value, list) or (
                isinstance(value, list) and len(value) != len(current)):
            return None
        for name, v in _ends(key, value):
            if name not in space:  # a pinned parameter: only its locked value is representable
                if abs(v - locked[name]) > _TOL:
                    return None
                continue
            lo, hi = space[name]
            if not lo - _TOL <= v <= hi + _TOL:
                return None
            params[name] = min(max(v, lo), hi)
    return params


@dataclass
class LoggedPolicy:
    """One policy the log's runs were planned with: the locked one, or the locked one with an overlay."""

    moved: dict[str, Any]
    run_ids: list[int]
    passed: int


def logged_policies(records: Sequence[Record]) -> list[LoggedPolicy]:
    """The distinct policies of the log's runs (by the overlay values each run's diagnostics recorded), most
    runs first; the warm start adds each as a finished trial."""
    groups: dict[str, LoggedPolicy] = {}
    for r in records:
        moved = dict(r.planned_with or {})
        key = repr(sorted(moved.items()))
        g = groups.setdefault(key, LoggedPolicy(moved=moved, run_ids=[], passed=0))
        g.run_ids.append(r.run_id)
        g.passed += r.outcome
    return sorted(groups.values(), key=lambda g: (-len(g.run_ids), repr(sorted(g.moved.items()))))
