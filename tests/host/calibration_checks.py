"""What every calibrated policy must keep, checked the same way by each calibration test: the hard sections
untouched, every tunable inside its range and trust region, and no plan for random contexts breaking a rule."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from agents.calibration.search import get_key
from agents.planning.animation_director import plan, plan_violations
from agents.policy import parse_policy
from host.records import random_context

HARD_SECTIONS = ("hard_rules", "limits", "signals", "nodes", "prompts", "raw_drivers", "model", "template")


def within(t: Any, original: Any, value: Any) -> bool:
    """value (a number or a list of ends) inside tunable t's range and one trust-region step of original."""
    vals = value if isinstance(value, list) else [value]
    orig = original if isinstance(original, list) else [original]
    return all(t.lo - 1e-9 <= v <= t.hi + 1e-9 and abs(v - o) <= t.step + 1e-9 for v, o in zip(vals, orig, strict=True))


def assert_keeps_hard_rules(raw: dict, locked_raw: dict, tunables: Mapping[str, Any], seed: int) -> None:
    for section in HARD_SECTIONS:
        assert raw[section] == locked_raw[section], section
    assert raw["cfg"]["global_min"] == 7.0 and raw["cfg"]["global_max"] == 10.0
    for key, t in tunables.items():
        assert within(t, get_key(locked_raw, key), get_key(raw, key)), key
    pol, locked = parse_policy(raw), parse_policy(locked_raw)
    rng = np.random.default_rng(seed)
    for _ in range(40):
        a, r = random_context(rng)
        p = plan(a, r, pol)
        assert not plan_violations(p, pol) and not plan_violations(p, locked)
        assert 7.0 <= p.cfg2 <= p.cfg1 <= 10.0 and p.ip2_weight <= min(0.55, p.ip1_weight - 0.10 + 1e-9)
        assert p.denoise2 <= 0.60
        if p.ip2_weight > 0.50:
            assert p.cfg2 <= 7.4 + 1e-9
        elif p.ip2_weight > 0.40:
            assert p.cfg2 <= 7.8 + 1e-9
