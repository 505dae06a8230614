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
from .model import VALUES, Logistic, features, value_matrix
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
            for dlo, dhi in ((0, -d), (0, d), (-d, 0), (d, 0)):
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
    """The logged requests and the fitted models: a candidate policy's predicted pass rate under each model.

    Support: the model is only asked about values the log explored. A candidate whose plan moves a
    value further from the locked plan than the exploration window (jitter share x the value's bounds
    width) on more than (1 - support_share) of the logged requests is not scored (None)."""

    analyses: Sequence[VisualAnalysis]
    references: Sequence[ReferenceReport]
    contexts: np.ndarray
    models: Sequence[Logistic]
    locked: Policy
    jitter: float = 0.0
    support_share: float = 0.0
    _v0: np.ndarray | None = None
    _window: np.ndarray | None = None

    def __post_init__(self) -> None:
        plans = [plan(a, r, self.locked) for a, r in zip(self.analyses, self.references, strict=True)]
        self._v0 = value_matrix([{k: float(v) for k, v in p.values().items()} for p in plans])
        self._window = np.array([[self.jitter * (p.bounds[n][1] - p.bounds[n][0]) + 1e-6 for n in VALUES]
                                 for p in plans]).reshape(self._v0.shape)

    def plans(self, policy: Policy) -> list[dict[str, float]]:
        return [{k: float(v) for k, v in plan(a, r, policy).values().items()}
                for a, r in zip(self.analyses, self.references, strict=True)]

    def supported(self, vals: np.ndarray) -> float:
        """Share of the logged requests whose candidate values all lie inside their exploration window."""
        assert self._v0 is not None and self._window is not None  # noqa: S101  (set in __post_init__)
        inside = np.all(np.abs(vals - self._v0) <= self._window, axis=1)
        return float(inside.mean()) if len(inside) else 1.0

    def score(self, raw: Mapping[str, Any]) -> np.ndarray | None:
        """Mean predicted pass probability per model (None: not a valid policy, or outside the log's support)."""
        try:
            policy = parse_policy(raw, source="<calibration candidate>")
        except PolicyError:
            return None
        vals = value_matrix(self.plans(policy))
        if self.supported(vals) < self.support_share:
            return None
        X = features(self.contexts, vals, self.locked)
        return np.array([float(m.predict(X).mean()) for m in self.models])


@dataclass
class Move:
    key: str
    value: Value
    was: Value
    gain: float
    agree: float
    quantile_note: str | None


def _passes(delta: np.ndarray, settings: Settings) -> bool:
    """One move's test: enough of the models predict a gain (move_confidence), of min_gain on average."""
    return float(np.mean(delta > 0)) >= settings.move_confidence and float(delta.mean()) >= settings.min_gain


def _confident(delta: np.ndarray, settings: Settings) -> bool:
    """The whole overlay's test: at least `confidence` of the models predict it beats the locked policy."""
    return float(np.mean(delta > 0)) >= settings.confidence and float(delta.mean()) >= settings.min_gain


def _best_single_moves(raw: dict[str, Any], start_raw: Mapping[str, Any], tunables: Mapping[str, Tunable],
                       quantiles: Mapping[str, float], evaluator: Evaluator, base: np.ndarray,
                       settings: Settings) -> list[tuple[float, str, Value]]:
    """Per tunable, its best candidate that passes the confidence test on its own; largest gain first."""
    found = []
    for key, t in tunables.items():
        best: tuple[float, str, Value] | None = None
        for value in candidate_values(t, get_key(raw, key), get_key(start_raw, key), quantiles.get(key)):
            cand = copy.deepcopy(raw)
            set_key(cand, key, value)
            scores = evaluator.score(cand)
            if scores is None or not _passes(scores - base, settings):
                continue
            if best is None or float((scores - base).mean()) > best[0]:
                best = (float((scores - base).mean()), key, value)
        if best is not None:
            found.append(best)
    return sorted(found, key=lambda m: -m[0])


def greedy_search(start_raw: dict[str, Any], tunables: Mapping[str, Tunable], quantiles: Mapping[str, float],
                  evaluator: Evaluator, settings: Settings,
                  progress: Callable[[str], None] | None = None) -> tuple[dict[str, Any], list[Move], np.ndarray]:
    """Rounds of: every tunable's best single move that passes the move test (at least `move_confidence`
    of the models predict a gain, of `min_gain` on average), then those moves combined largest first,
    each kept only while the combination still passes it. The result is the last round whose whole
    overlay at least `confidence` of the models predict to beat the locked policy (else no change)."""
    raw = copy.deepcopy(start_raw)
    base = evaluator.score(raw)
    if base is None:
        raise PolicyError("calibration: the locked policy does not validate")
    start = base.copy()
    moves: dict[str, Move] = {}
    history: list[tuple[dict[str, Any], np.ndarray, dict[str, Move]]] = [(copy.deepcopy(raw), base.copy(), {})]
    for round_no in range(settings.max_rounds):
        singles = _best_single_moves(raw, start_raw, tunables, quantiles, evaluator, base, settings)
        accepted = 0
        current, current_scores = raw, base
        for _gain, key, value in singles:
            cand = copy.deepcopy(current)
            set_key(cand, key, value)
            scores = evaluator.score(cand)
            if scores is None or (accepted and not _passes(scores - current_scores, settings)):
                continue
            agree = float(np.mean(scores - current_scores > 0))
            step_gain = float((scores - current_scores).mean())
            current, current_scores, accepted = cand, scores, accepted + 1
            q = quantiles.get(key)
            note = (f"the {tunables[key].quantile:.0%} quantile of the logged {tunables[key].signal} is {q:.3f}"
                    if q is not None and tunables[key].quantile is not None else None)
            was = moves[key].was if key in moves else get_key(start_raw, key)
            earlier = moves[key].gain if key in moves else 0.0
            moves[key] = Move(key=key, value=value, was=was, gain=earlier + step_gain, agree=agree,
                              quantile_note=note)
            if progress:
                progress(f"round {round_no + 1}: {key} -> {value} (predicted pass rate {step_gain:+.3f})")
        if not accepted:
            break
        raw, base = current, current_scores
        history.append((copy.deepcopy(raw), base.copy(), dict(moves)))
    # Back off round by round until the whole overlay passes the stricter test (or nothing is left).
    for raw_k, base_k, moves_k in reversed(history[1:]):
        if _confident(base_k - start, settings):
            return raw_k, [m for m in moves_k.values() if m.value != m.was], base_k - start
    return copy.deepcopy(start_raw), [], np.zeros_like(start)
