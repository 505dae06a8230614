"""Tier 1: off-policy evaluation (agents/calibration/off_policy.py) on synthetic logs with a known truth: unbiased
within the interval, a logging policy evaluating itself, a shifted candidate on a known surface, weights clipped,
runs without a density counted, bad densities named in a one-line error, and `./m4 calibrate`'s refusal."""

from __future__ import annotations

import copy
import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest

from agents.calibration.calibrate import calibrate
from agents.calibration.dataset import Dataset, LoggedDraw, Record
from agents.calibration.explore import explore, explored_plan
from agents.calibration.model import fit_logistic
from agents.calibration.off_policy import (
    OffPolicyError,
    OPEData,
    compare_policies,
    estimate,
    evaluate,
    load_ope_settings,
    parse_ope_settings,
    refusal,
)
from agents.calibration.settings import CalibrationConfigError, load_settings
from agents.planning.animation_director import plan
from agents.policy import parse_policy, raw_default_policy
from host.records import make_analysis, make_reference

RAW = raw_default_policy()
LOCKED = parse_policy(RAW)
OPE = load_ope_settings()
SHARE = 0.3


def _fit(X: np.ndarray, y: np.ndarray):
    return fit_logistic(X, y, 3.0, 50, 1e-8)


def _truth(a, v: dict[str, float]) -> float:
    best_cfg1 = 7.3 + 1.3 * (1 - a.construction_lines)
    z = 0.5 - 2.0 * (v["cfg2"] - 7.2) * v["ip2_weight"] - 1.5 * (v["cfg1"] - best_cfg1) ** 2
    return float(1 / (1 + np.exp(-z)))


def _records(n: int, seed: int, *, every_density: int = 1) -> list[Record]:
    """Runs logged under the locked policy with exploration; every `every_density`-th run keeps its density."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        a = make_analysis(line_quality_score=float(rng.random()), construction_lines=float(rng.random() * 0.5),
                          complexity_score=float(rng.random()), subject_scale=float(rng.random()),
                          anatomy_risk_score=float(rng.random()))
        r = make_reference(similarity=float(rng.random()), conflict_penalty=float(rng.random() * 0.5),
                           style_distance=float(rng.random()))
        q = explored_plan(plan(a, r, LOCKED), LOCKED, rng, SHARE)
        v = {n: float(x) for n, x in q.values().items()}
        ex = q.diagnostics["exploration"]
        keep = k % every_density == 0
        logged = LoggedDraw(ex["draw"], ex["log_density"], ex["share"], ex["windows"]) if keep else None
        y = int(rng.random() < _truth(a, v))
        out.append(Record(run_id=k + 1, analysis=a, reference=r, values=v, outcome=y, outcome_source="verdict",
                          created_at=1.7e9 + k, exploration=logged))
    return out


def _shifted_raw(key: str = "cfg1", by: float = -0.4) -> dict:
    raw = copy.deepcopy(RAW)
    for case in ("single_simple", "single_complex", "multi_object"):
        lo, hi = raw["cases"][case][key]
        raw["cases"][case][key] = [lo, hi + by]
    return raw


def _jittered_truth(records: list[Record], policy, draws: int, seed: int) -> float:
    """The evaluated policy's true pass rate on the logged requests: its plan under the log's jitter kernel."""
    rng = np.random.default_rng(seed)
    return float(np.mean([np.mean([_truth(r.analysis, explore(plan(r.analysis, r.reference, policy), policy, rng,
                                                                 SHARE)[0]) for _ in range(draws)])
                          for r in records]))


def test_estimators_are_unbiased_and_cover_on_a_one_dimensional_log() -> None:
    """Logging a ~ U[0, 1], target U[0.2, 0.7] (inside the support), P(pass | a) = a: the truth is 0.45."""
    rng = np.random.default_rng(0)
    s = dataclasses.replace(OPE, bootstrap=200)
    reps, n, truth = 200, 200, 0.45
    ips, dr, covered = [], [], 0
    for _ in range(reps):
        a = rng.random(n)
        y = (rng.random(n) < a).astype(float)
        w = np.where((a >= 0.2) & (a <= 0.7), 2.0, 0.0)
        m = a + 0.1  # a wrong model: its direct method alone is biased by +0.1 ...
        dm = np.full(n, truth + 0.1)  # ... (its mean under the target); with correct weights DR is still unbiased
        e = estimate(y, w, m, dm, s, rng)
        ips.append(e.ips)
        dr.append(e.dr)
        covered += e.intervals["dr"][0] <= truth <= e.intervals["dr"][1]
    se = np.std(ips) / np.sqrt(reps)
    assert abs(np.mean(ips) - truth) < 3 * se
    assert abs(np.mean(dr) - truth) < 3 * np.std(dr) / np.sqrt(reps)
    assert 0.8 <= covered / reps <= 0.97
    assert abs(e.ess - (w.sum() ** 2 / (w ** 2).sum())) < 1e-9


def test_logging_policy_evaluating_itself_gives_the_mean_outcome() -> None:
    recs = _records(160, 1)
    data = OPEData.build(recs, LOCKED, _fit, OPE)
    e = evaluate(data, LOCKED)
    mean_y = float(np.mean([r.outcome for r in recs]))
    assert e.ips == pytest.approx(mean_y, abs=1e-9) and e.snips == pytest.approx(mean_y, abs=1e-9)
    assert e.ess == pytest.approx(len(recs)) and e.zero_weight == 0 and e.max_weight == pytest.approx(1.0)
    assert e.intervals["dr"][0] <= mean_y <= e.intervals["dr"][1]
    truth = _jittered_truth(recs, LOCKED, 30, 2)
    for k in ("ips", "dr"):
        assert e.intervals[k][0] <= truth <= e.intervals[k][1], k


@pytest.mark.parametrize(("key", "by"), [("cfg1", -0.15), ("ip2_weight", -0.05)])
def test_shifted_candidate_on_a_known_surface(key: str, by: float) -> None:
    """Outcomes = the surface's pass probability at the logged values (no coin flips: only the draws are random),
    so DR must land on the candidate's true rate up to the small part of its kernel the log never covered."""
    recs = [dataclasses.replace(r, outcome=_truth(r.analysis, r.values)) for r in _records(300, 4)]
    cand = parse_policy(_shifted_raw(key, by))
    e = evaluate(OPEData.build(recs, LOCKED, _fit, OPE), cand)
    truth = _jittered_truth(recs, cand, 30, 4)
    assert 0 < e.ess < len(recs) and e.zero_weight > 0  # the candidate moved: some draws are outside its windows
    assert 0.9 < e.support < 1.0
    assert e.intervals["dr"][0] <= truth <= e.intervals["dr"][1] and abs(e.dr - truth) < 0.015
    assert e.ips < e.dr  # IPS counts the uncovered part as failures


def test_support_falls_for_a_candidate_far_from_the_log() -> None:
    recs = _records(120, 3)
    data = OPEData.build(recs, LOCKED, _fit, OPE)
    near, far = evaluate(data, parse_policy(_shifted_raw("cfg1", -0.15))), evaluate(data, parse_policy(_shifted_raw()))
    assert far.support < near.support < 1.0 and far.ess < near.ess
    assert evaluate(data, LOCKED).support == pytest.approx(1.0)


def test_weights_are_clipped_and_counted() -> None:
    s = dataclasses.replace(OPE, clip=3.0)
    y = np.array([1.0, 0.0, 1.0, 1.0])
    w = np.array([10.0, 1.0, 0.0, 2.0])
    e = estimate(y, w, np.full(4, 0.5), np.full(4, 0.5), s, np.random.default_rng(0))
    assert e.clipped == 1 and e.zero_weight == 1 and e.max_weight == 10.0
    assert e.ips == pytest.approx((3.0 + 0 + 0 + 2.0) / 4)
    assert e.snips == pytest.approx(5.0 / 6.0)


def test_runs_without_a_density_are_left_out_and_counted() -> None:
    recs = _records(90, 5, every_density=3)
    data = OPEData.build(recs, LOCKED, _fit, OPE)
    e = evaluate(data, LOCKED)
    assert e.runs == 30 and e.excluded == 60
    few = compare_policies(recs[:12], LOCKED, LOCKED, LOCKED, _fit, OPE)
    assert few.current is None and "no off-policy estimate: 4 of 12 run(s)" in few.note and few.refused is None


@pytest.mark.parametrize(("log_density", "share", "words"), [
    (float("nan"), SHARE, "not a number"), (-math.inf, SHARE, "is zero"), (math.inf, SHARE, "infinite"),
    ("x", SHARE, "not a number"), (-3.0, 0.0, "jitter share"), (-3.0, None, "jitter share")])
def test_bad_logged_densities_are_named_in_one_line(log_density, share, words: str) -> None:
    recs = _records(20, 6)
    e = recs[7].exploration
    recs[7] = dataclasses.replace(recs[7], exploration=LoggedDraw(e.draw, log_density, share))
    with pytest.raises(OffPolicyError) as info:
        OPEData.build(recs, LOCKED, _fit, OPE)
    text = str(info.value)
    assert "run 8" in text and words in text and "\n" not in text


def test_bad_draws_and_bad_arrays_are_refused() -> None:
    recs = _records(20, 7)
    e = recs[2].exploration
    recs[2] = dataclasses.replace(recs[2], exploration=LoggedDraw({"cfg1": 8.0}, e.log_density, e.share))
    with pytest.raises(OffPolicyError, match="run 3: the logged draw"):
        OPEData.build(recs, LOCKED, _fit, OPE)
    with pytest.raises(OffPolicyError, match="weights hold a NaN"):
        estimate(np.ones(3), np.array([1.0, np.nan, 1.0]), np.ones(3), np.ones(3), OPE, np.random.default_rng(0))
    with pytest.raises(OffPolicyError, match="weights must be >= 0"):
        estimate(np.ones(3), np.array([1.0, -1.0, 1.0]), np.ones(3), np.ones(3), OPE, np.random.default_rng(0))


def test_settings_errors_name_the_key() -> None:
    good = {"estimate": {"clip": 10.0, "bootstrap": 100, "interval": 0.9, "dm_samples": 8, "folds": 5,
                         "min_logged": 10, "seed": 0}, "refuse": {"margin": 0.03, "holdout_share": 0.0},
            "select": {"candidates": 4, "move_share": 0.3, "dm_samples": 2}}
    assert parse_ope_settings(good).clip == 10.0
    bad = copy.deepcopy(good)
    bad["estimate"]["clip"] = 0.5
    with pytest.raises(CalibrationConfigError, match="estimate.clip"):
        parse_ope_settings(bad)
    bad = copy.deepcopy(good)
    bad["refuse"]["margins"] = 1
    with pytest.raises(CalibrationConfigError, match="refuse.margins: unknown key"):
        parse_ope_settings(bad)


def test_refusal_rule_compares_dr_lower_bounds() -> None:
    s = dataclasses.replace(OPE, refuse_margin=0.03)
    rng = np.random.default_rng(0)
    y = (rng.random(200) < 0.5).astype(float)
    cur = estimate(y, np.ones(200), np.full(200, 0.5), np.full(200, 0.5), s, np.random.default_rng(1))
    worse = estimate(y, np.ones(200), np.full(200, 0.5), np.full(200, 0.4), s, np.random.default_rng(1))
    same = estimate(y, np.ones(200), np.full(200, 0.5), np.full(200, 0.49), s, np.random.default_rng(1))
    assert refusal(cur, worse, s) is not None and "refuse.margin" in refusal(cur, worse, s)
    assert refusal(cur, same, s) is None


def test_calibrate_reports_off_policy_estimates_in_the_provenance(tmp_path: Path) -> None:
    recs = _records(80, 8)
    fast = dataclasses.replace(load_settings(), bootstrap=6, max_rounds=2, l2_grid=(3.0,), cv_folds=3)
    res = calibrate(Dataset(records=recs, total_rows=len(recs)), RAW, settings=fast,
                    ope_settings=dataclasses.replace(OPE, bootstrap=50, dm_samples=4))
    prov = res.provenance["off_policy"]
    assert res.off_policy is not None and res.off_policy.current is not None
    assert prov["current_ips"] == pytest.approx(np.mean([r.outcome for r in recs]), abs=1e-6)
    assert len(prov["calibrated_dr_interval"]) == 2 and len(prov["dr_gain_interval"]) == 2


def test_selection_by_dr_lower_bound_stays_in_the_trust_region() -> None:
    from agents.calibration.search import get_key
    from agents.calibration.select import select_by_dr
    from agents.calibration.settings import load_tunables

    recs = _records(120, 9)
    tun = load_tunables(RAW)
    s = dataclasses.replace(OPE, select_candidates=10, bootstrap=60)
    assert select_by_dr(recs, RAW, RAW, [], tun, {}, LOCKED, _fit, dataclasses.replace(s, select_candidates=0)) is None
    assert select_by_dr(recs[:5], RAW, RAW, [], tun, {}, LOCKED, _fit, s) is None  # too few densities
    sel = select_by_dr(recs, RAW, _shifted_raw("cfg1", -0.3), [], tun, {}, LOCKED, _fit, s)
    assert sel is not None and sel.candidates == 12 and sel.lower >= sel.current_lower
    for key, t in tun.items():
        new, old = get_key(sel.raw, key), get_key(RAW, key)
        for v, o in zip(new if isinstance(new, list) else [new], old if isinstance(old, list) else [old], strict=True):
            assert t.lo - 1e-9 <= v <= t.hi + 1e-9 and abs(v - o) <= t.step + 1e-9, key
    parse_policy(sel.raw)
    assert all(m.reason for m in sel.moved) and {m.key for m in sel.moved} <= set(tun)


def test_runs_held_out_for_the_check_are_not_used_by_the_choice() -> None:
    from agents.calibration.off_policy import split_for_check

    recs = _records(60, 10, every_density=2)
    same = split_for_check(recs, OPE)
    assert same[0] == recs and same[1] == recs
    choose, check = split_for_check(recs, dataclasses.replace(OPE, check_holdout=0.5))
    assert len(check) == 15 and all(r.exploration is not None for r in check)
    assert not {r.run_id for r in choose} & {r.run_id for r in check} and len(choose) + len(check) == 60
    fast = dataclasses.replace(load_settings(), bootstrap=6, max_rounds=2, l2_grid=(3.0,), cv_folds=3)
    res = calibrate(Dataset(records=recs, total_rows=len(recs)), RAW, settings=fast,
                    ope_settings=dataclasses.replace(OPE, check_holdout=0.5, min_logged=10, bootstrap=50,
                                                     dm_samples=2, select_candidates=4))
    assert res.off_policy is not None and res.off_policy.current is not None
    assert res.off_policy.current.runs == 15
