"""Can off-policy estimates pick a better policy than the greedy search? (`bench_calibration.py --selection`)

On the TUNING seeds only (bench_calibration.TUNING_SEEDS, never the checking seeds the main table uses):
log 100 explored runs, calibrate as `./m4 calibrate` does (greedy), then choose among {current,
greedy, N random trust-region policies} by each selector: the DR estimate, its lower bound, SNIPS,
the direct method alone; and, as the ceiling of that candidate set, by the TRUE rate. "greedy" is the
search alone, "calibrated" what `./m4 calibrate` ships (greedy, then agents/calibration/select.py's
choice by DR lower bound among its own candidates, then the refusal rule). Every choice is scored by its
true expected pass rate on the fresh pairs, like the main table.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

SELECTORS = ("dr", "dr_lower", "snips", "dm")


def _pick(rows: list[dict[str, Any]], key: str) -> float:
    return float(max(rows, key=lambda r: r[key])["true"])


def one_log(b: Any, surface: Callable[..., np.ndarray], train: list[Any], fresh: list[Any], fresh_ctx: np.ndarray,
            seed: int, n_random: int) -> dict[str, float]:
    from agents.calibration.calibrate import calibrate
    from agents.calibration.model import fit_logistic
    from agents.calibration.off_policy import OPEData, evaluate, load_ope_settings
    from agents.policy import parse_policy

    rng = np.random.default_rng(seed)
    ds = b.log_runs(train, 100, surface, rng)
    res = calibrate(ds, b.RAW, ope_settings=dataclasses.replace(load_ope_settings(), select_candidates=0))
    greedy = parse_policy(res.calibrated_raw)
    full = calibrate(ds, b.RAW)  # what `./m4 calibrate` does: greedy, then the choice by DR lower bound (select.py)
    shipped = b.LOCKED if full.off_policy.refused else parse_policy(full.calibrated_raw)
    l2 = res.heldout["l2"] if np.isfinite(res.heldout["l2"]) else b.SET.l2_grid[0]
    s = dataclasses.replace(load_ope_settings(), dm_samples=4, bootstrap=200)
    data = OPEData.build(ds.records, b.LOCKED, lambda X, y: fit_logistic(X, y, l2, 50, 1e-8), s)
    cands = [b.LOCKED, greedy] + [parse_policy(b.random_config(rng)) for _ in range(n_random)]
    rows = []
    for pol in cands:
        e = evaluate(data, pol)
        rows.append({"dr": e.dr, "dr_lower": e.intervals["dr"][0], "snips": e.snips, "dm": e.dm,
                     "true": b.true_rate(pol, fresh, fresh_ctx, surface)})
    out = {"current": rows[0]["true"], "greedy": rows[1]["true"], "ceiling": _pick(rows, "true"),
           "calibrated": b.true_rate(shipped, fresh, fresh_ctx, surface)}
    out |= {k: _pick(rows, k) for k in SELECTORS}
    out["greedy_dr_veto"] = rows[1]["true"] if rows[1]["dr_lower"] >= rows[0]["dr_lower"] else rows[0]["true"]
    return out


def run(b: Any, train: list[Any], fresh: list[Any], fresh_ctx: np.ndarray, oracle: dict[str, float],
        n_random: int) -> None:
    from calibration_sim import SURFACES

    for name, surface in SURFACES.items():
        rows = [one_log(b, surface, train, fresh, fresh_ctx, seed, n_random) for seed in b.TUNING_SEEDS]
        agg = {k: np.array([r[k] for r in rows]) for k in rows[0]}
        cur = float(agg["current"].mean())
        print(f"\nselection on the tuning seeds {b.TUNING_SEEDS}, surface {name}, 100 runs, candidates: current, "
              f"greedy and {n_random} random trust-region policies (true rate, mean +- sd):")
        for k in ("current", "greedy", "calibrated", *SELECTORS, "greedy_dr_veto", "ceiling"):
            m = float(agg[k].mean())
            gap = (m - cur) / (oracle[name] - cur) if oracle[name] > cur else float("nan")
            print(f"  {k:<16}{m:>7.3f} +-{float(agg[k].std()):.3f}{gap:>8.0%} of the gap")
