"""Candidate overlays inside the trust region, scored by re-planning the logged requests under each candidate
and averaging the fitted models' predicted pass probability; a greedy search keeps only confident gains."""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..measure.analysis_types import ReferenceReport, VisualAnalysis
from ..planning.animation_director import plan
from ..policy import Policy, PolicyError, parse_policy
from .model import Logistic, features, value_matrix
from .settings import Settings, Tunable

Value = float | list[float]
_EPS = 1e-9


def get_key(raw: Mapping[str, Any], key: str) -> Any:
    node: Any = raw
    for part in key.split("."):
        node = node[part]
    return copy.deepcopy(node)


def set_key(raw: dict[str, Any], key: str, value: Value) -> None:
    *parents, leaf = key.split(".")
    node = raw
    for part in parents:
        node = node[part]
    node[leaf] = copy.deepcopy(value)


def _inside(t: Tunable, original: float, x: float) -> float:
    lo, hi = max(t.lo, original - t.step), min(t.hi, original + t.step)
    return float(min(max(x, lo), hi))


def candidate_values(t: Tunable, current: Value, original: Value, quantile_value: float | None) -> list[Value]:
    """Moves of half and a whole trust-region step from the current value (and, for a threshold, to its
    empirical quantile), every one clipped into the trust region around the locked value and the declared range."""
    out: list[Value] = []
    if isinstance(current, list) and isinstance(original, list):
        lo, hi = current
        for d in (t.step / 2, t.step):
            for dlo, dhi in ((0, -d), (0, d), (-d, 0), (d, 0), (-d, -d), (d, d)):
                nlo, nhi = _inside(t, original[0], lo + dlo), _inside(t, original[1], hi + dhi)
                if nlo <= nhi + _EPS:
                    out.append([round(nlo, 6), round(max(nlo, nhi), 6)])
    elif isinstance(current, int | float) and isinstance(original, int | float):
        targets = [current - t.step / 2, current + t.step / 2, current - t.step, current + t.step]
        targets += [quantile_value] if quantile_value is not None else []
        out = [round(_inside(t, float(original), x), 6) for x in targets]
    unique: list[Value] = []
    for v in out:
        if v != current and v not in unique:
            unique.append(v)
    return unique


@dataclass
class Evaluator:
    """The logged requests and the fitted models: a candidate policy's predicted pass rate under each model."""

    analyses: Sequence[VisualAnalysis]
    references: Sequence[ReferenceReport]
    contexts: np.ndarray
    models: Sequence[Logistic]
    locked: Policy

    def plans(self, policy: Policy) -> list[dict[str, float]]:
        return [{k: float(v) for k, v in plan(a, r, policy).values().items()}
                for a, r in zip(self.analyses, self.references, strict=True)]

    def score(self, raw: Mapping[str, Any]) -> np.ndarray | None:
        """Mean predicted pass probability per model (None when the candidate is not a valid policy)."""
        try:
            policy = parse_policy(raw, source="<calibration candidate>")
        except PolicyError:
            return None
        X = features(self.contexts, value_matrix(self.plans(policy)), self.locked)
        return np.array([float(m.predict(X).mean()) for m in self.models])


@dataclass
class Move:
    key: str
    value: Value
    was: Value
    gain: float
    agree: float
    quantile_note: str | None


def greedy_search(start_raw: dict[str, Any], tunables: Mapping[str, Tunable], quantiles: Mapping[str, float],
                  evaluator: Evaluator, settings: Settings,
                  progress: Callable[[str], None] | None = None) -> tuple[dict[str, Any], list[Move], np.ndarray]:
    """One move per round: the candidate with the largest mean gain among those that at least
    `confidence` of the models predict to gain and that gain at least `min_gain` on average."""
    raw = copy.deepcopy(start_raw)
    base = evaluator.score(raw)
    if base is None:
        raise PolicyError("calibration: the locked policy does not validate")
    start = base.copy()
    moves: dict[str, Move] = {}
    for round_no in range(settings.max_rounds):
        best: tuple[float, str, Value, np.ndarray] | None = None
        for key, t in tunables.items():
            for value in candidate_values(t, get_key(raw, key), get_key(start_raw, key), quantiles.get(key)):
                cand = copy.deepcopy(raw)
                set_key(cand, key, value)
                scores = evaluator.score(cand)
                if scores is None:
                    continue
                delta = scores - base
                if float(np.mean(delta > 0)) >= settings.confidence and float(delta.mean()) >= settings.min_gain:
                    if best is None or delta.mean() > best[0]:
                        best = (float(delta.mean()), key, value, scores)
        if best is None:
            break
        gain, key, value, scores = best
        agree = float(np.mean(scores - base > 0))
        set_key(raw, key, value)
        base = scores
        q = quantiles.get(key)
        note = (f"the {tunables[key].quantile:.0%} quantile of the logged {tunables[key].signal} is {q:.3f}"
                if q is not None else None)
        was = moves[key].was if key in moves else get_key(start_raw, key)
        earlier = moves[key].gain if key in moves else 0.0
        moves[key] = Move(key=key, value=value, was=was, gain=earlier + gain, agree=agree, quantile_note=note)
        if progress:
            progress(f"round {round_no + 1}: {key} -> {value} (predicted pass rate +{gain:.3f})")
    final_moves = [m for m in moves.values() if m.value != m.was]
    return raw, final_moves, base - start
