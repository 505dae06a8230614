"""The overlay chosen by off-policy evaluation: the current policy, the greedy search's result and random
trust-region policies (around each of the two) are estimated by doubly robust evaluation on the explored
runs, and the one with the highest DR lower bound is kept (the current policy wins ties).

The model-guided greedy search only trusts what its features can represent; the DR estimate corrects
the model with the logged outcomes themselves, so on a surface the features miss it still ranks
candidates by what the log shows. The lower bound (not the point) keeps the winner's curse of a
many-way choice in check; `./m4 calibrate`'s refusal rule still applies to the result.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..policy import Policy, PolicyError, parse_policy
from ..policy.overlay import MovedValue
from .dataset import Record
from .off_policy import Fit, OPEData, OPESettings, evaluate
from .search import candidate_values, get_key, set_key
from .settings import Tunable


@dataclass
class Selection:
    raw: dict[str, Any]
    moved: list[MovedValue]
    chosen: str  # "current" | "greedy" | "random"
    lower: float
    current_lower: float
    candidates: int


def random_candidate(start: Mapping[str, Any], locked: Mapping[str, Any], tunables: Mapping[str, Tunable],
                     quantiles: Mapping[str, float], share: float, rng: np.random.Generator) -> dict[str, Any]:
    """`start` with each tunable moved, with probability `share`, to one of its trust-region candidates (the moves
    the greedy search considers); a move the policy refuses is dropped."""
    raw = copy.deepcopy(dict(start))
    for key, t in tunables.items():
        if rng.random() >= share:
            continue
        options = candidate_values(t, get_key(raw, key), get_key(locked, key), quantiles.get(key))
        if not options:
            continue
        trial = copy.deepcopy(raw)
        set_key(trial, key, options[int(rng.integers(0, len(options)))])
        try:
            parse_policy(trial, source="<selection candidate>")
        except PolicyError:
            continue
        raw = trial
    return raw


def _diff(raw: Mapping[str, Any], locked: Mapping[str, Any], tunables: Mapping[str, Tunable],
          reason: str) -> list[MovedValue]:
    return [MovedValue(key=k, value=get_key(raw, k), was=get_key(locked, k), reason=reason)
            for k in tunables if get_key(raw, k) != get_key(locked, k)]


def select_by_dr(records: Sequence[Record], locked_raw: Mapping[str, Any], greedy_raw: Mapping[str, Any],
                 greedy_moved: list[MovedValue], tunables: Mapping[str, Tunable], quantiles: Mapping[str, float],
                 locked: Policy, fit: Fit, s: OPESettings) -> Selection | None:
    """The best candidate by DR lower bound; None when too few runs carry a density (the greedy result stands)."""
    if s.select_candidates == 0 or sum(r.exploration is not None for r in records) < s.min_logged:
        return None
    data = OPEData.build(records, locked, fit, dataclasses.replace(s, dm_samples=s.select_dm_samples))
    if len(data.records) < s.min_logged:
        return None
    rng = np.random.default_rng(s.seed + 2)
    pool: list[tuple[str, dict[str, Any]]] = [("current", copy.deepcopy(dict(locked_raw))),
                                              ("greedy", copy.deepcopy(dict(greedy_raw)))]
    for k in range(s.select_candidates):
        around = greedy_raw if k % 2 else locked_raw
        pool.append(("random", random_candidate(around, locked_raw, tunables, quantiles, s.select_move_share, rng)))
    lows = []
    for _label, raw in pool:
        try:
            lows.append(evaluate(data, parse_policy(raw, source="<selection candidate>")).intervals["dr"][0])
        except PolicyError:
            lows.append(-np.inf)
    best = int(np.argmax(lows))  # the first maximum: the current policy wins ties
    label, raw = pool[best]
    if label == "greedy":
        moved = greedy_moved
    else:
        moved = _diff(raw, locked_raw, tunables, f"chosen among {len(pool)} trust-region candidates by its doubly "
                                                 f"robust lower bound {lows[best]:.3f} (current policy "
                                                 f"{lows[0]:.3f}) on {len(data.records)} explored runs")
    return Selection(raw=raw, moved=moved, chosen=label, lower=float(lows[best]), current_lower=float(lows[0]),
                     candidates=len(pool))
