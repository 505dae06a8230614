"""Tier 1: calibration from logged runs: too few runs, NaN rows, ratings over verdicts, the model, and (hypothesis)
that no calibration of any random log moves a hard rule, leaves a declared range or trust region, or yields a
plan that breaks a hard rule."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents.calibration.calibrate import NotEnoughRuns, calibrate
from agents.calibration.dataset import Dataset, LoggedDraw, Record, load_dataset
from agents.calibration.explore import explored_plan
from agents.calibration.model import FitError, brier, fit_logistic, log_loss
from agents.calibration.off_policy import load_ope_settings
from agents.calibration.settings import CalibrationConfigError, load_settings, load_tunables, parse_tunables
from agents.planning.animation_director import plan, plan_violations
from agents.policy import parse_policy, raw_default_policy
from agents.policy.overlay import dump_overlay, load_with_overlay
from agents.runtime.run_log import RunLog
from host.calibration_checks import assert_keeps_hard_rules
from host.records import random_context

RAW = raw_default_policy()
LOCKED = parse_policy(RAW)
FAST = dataclasses.replace(load_settings(), bootstrap=6, max_rounds=3, l2_grid=(1.0, 10.0), cv_folds=3)
# the off-policy choice (select.py) runs in every calibration below, on fewer candidates and draws
FAST_OPE = dataclasses.replace(load_ope_settings(), select_candidates=8, bootstrap=40, dm_samples=2)


def _truth(a, r, v: dict[str, float]) -> float:
    best_cfg1 = 7.3 + 1.3 * (1 - a.construction_lines)
    z = 0.5 - 2.0 * (v["cfg2"] - 7.2) * v["ip2_weight"] - 1.5 * (v["cfg1"] - best_cfg1) ** 2
    return float(1 / (1 + np.exp(-z)))


def make_dataset(n: int, seed: int, outcome: str = "truth") -> Dataset:
    rng = np.random.default_rng(seed)
    recs = []
    for k in range(n):
        a, r = random_context(rng)
        q = explored_plan(plan(a, r, LOCKED), LOCKED, rng, 0.3)
        values = {n: float(x) for n, x in q.values().items()}
        ex = q.diagnostics["exploration"]
        if outcome == "truth":
            y = int(rng.random() < _truth(a, r, values))
        else:
            y = int(rng.random() < 0.5)
        recs.append(Record(run_id=k + 1, analysis=a, reference=r, values=values, outcome=y, outcome_source="verdict",
                           created_at=1.7e9 + k,
                           exploration=LoggedDraw(ex["draw"], ex["log_density"], ex["share"], ex["windows"])))
    return Dataset(records=recs, total_rows=n)


def test_too_few_runs_says_how_many() -> None:
    with pytest.raises(NotEnoughRuns, match=r"at least 30 usable runs.*has 10 usable"):
        calibrate(make_dataset(10, 0), RAW, settings=FAST, ope_settings=FAST_OPE)
    with pytest.raises(NotEnoughRuns, match="has 0 usable"):
        calibrate(Dataset(records=[]), RAW, settings=FAST, ope_settings=FAST_OPE)


def test_one_outcome_only_is_refused() -> None:
    ds = make_dataset(40, 1)
    for r in ds.records:
        r.outcome = 1
    with pytest.raises(NotEnoughRuns, match="0 bad"):
        calibrate(ds, RAW, settings=FAST, ope_settings=FAST_OPE)
    with pytest.raises(FitError, match="both good and bad"):
        fit_logistic(np.ones((5, 2)), np.ones(5), 1.0, 10, 1e-8)


def test_logistic_recovers_a_known_direction_and_scores() -> None:
    rng = np.random.default_rng(3)
    X = rng.normal(size=(400, 3))
    y = (rng.random(400) < 1 / (1 + np.exp(-(2 * X[:, 0] - X[:, 1])))).astype(float)
    m = fit_logistic(X, y, 1.0, 50, 1e-10)
    assert m.coef[0] > 0.5 and m.coef[1] < -0.2 and abs(m.coef[2]) < 0.3
    p = m.predict(X)
    assert log_loss(y, p, 1e-4) < log_loss(y, np.full(400, y.mean()), 1e-4)
    assert brier(y, p) < brier(y, np.full(400, y.mean()))


def test_calibration_moves_tunables_with_reasons_and_overlay_loads(tmp_path: Path) -> None:
    res = calibrate(make_dataset(120, 7), RAW, settings=FAST, ope_settings=FAST_OPE)
    assert res.provenance["run_count"] == 120 and res.provenance["policy_version"] == RAW["version"]
    assert set(res.heldout) >= {"model_log_loss", "rules_log_loss", "model_brier", "rules_brier"}
    tun = load_tunables(RAW)
    for m in res.moved:
        assert m.key in tun and m.reason.strip() and m.value != m.was
    path = tmp_path / "ov.toml"
    path.write_text(dump_overlay(res.provenance, res.moved))
    loaded = load_with_overlay(path)
    assert loaded.applied, loaded.note
    assert len(loaded.overlay.moved) == len(res.moved)


def test_log_round_trip_prefers_ratings_and_drops_nan(tmp_path: Path) -> None:
    img = tmp_path / "s.png"
    img.write_bytes(b"fake image bytes")
    rng = np.random.default_rng(0)
    with RunLog(tmp_path / "log.sqlite3") as log:
        ids = []
        for k in range(4):
            a, r = random_context(rng)
            p = plan(a, r, LOCKED)
            rid = log.start_run(sketch=img, reference=None, server="t")
            log.record(rid, plan=p.to_dict(), diagnostics=p.diagnostics, accepted=k % 2 == 0,
                       metrics={"analysis": a.to_dict(), "reference": r.to_dict()})
            log.finish(rid, status="done")
            ids.append(rid)
        log.rate(ids[0], "bad")
        # a hand-edited row with a NaN (JSON allows NaN on read) and an unfinished one
        log._db.execute("UPDATE runs SET metrics = replace(metrics, '\"subject_scale\": ', '\"subject_scale\": NaN, "
                        "\"x\": ') WHERE id = ?", (ids[1],))
        log.start_run(sketch=img, reference=None, server="t")
        ds = load_dataset(log)
    by_id = {r.run_id: r for r in ds.records}
    assert by_id[ids[0]].outcome == 0 and by_id[ids[0]].outcome_source == "rating"
    assert by_id[ids[2]].outcome == 1 and by_id[ids[2]].outcome_source == "verdict"
    assert ids[1] not in by_id
    assert any("NaN" in k or "cannot read" in k for k in ds.dropped) and any("status" in k for k in ds.dropped)


def test_tunables_refuse_hard_keys_and_bad_ranges() -> None:
    with pytest.raises(CalibrationConfigError, match="hard_rules.ip2_abs_max: a hard rule"):
        parse_tunables({"tunables": {"hard_rules.ip2_abs_max": {"kind": "amount", "range": [0, 1], "step": 0.1}}}, RAW)
    with pytest.raises(CalibrationConfigError, match="classify.small_below.range: .* must contain the locked"):
        parse_tunables({"tunables": {"classify.small_below": {"kind": "amount", "range": [0.3, 0.35], "step": 0.05}}},
                       RAW)
    with pytest.raises(CalibrationConfigError, match="classify.small_below.range: .* leaves the policy's tunable"):
        parse_tunables({"tunables": {"classify.small_below": {"kind": "amount", "range": [0.1, 0.3], "step": 0.05}}},
                       RAW)
    with pytest.raises(CalibrationConfigError, match="modifiers.large_union_max_drop: not marked tunable"):
        parse_tunables({"tunables": {"modifiers.large_union_max_drop": {"kind": "amount", "step": 0.05}}}, RAW)
    with pytest.raises(CalibrationConfigError, match="cases.single_simple.cfg2.kind"):
        parse_tunables({"tunables": {"cases.single_simple.cfg2": {"kind": "amount", "range": [7, 9], "step": 0.1}}},
                       RAW)
    with pytest.raises(CalibrationConfigError, match="cfg.global_max: a hard rule"):
        parse_tunables({"tunables": {"cfg.global_max": {"kind": "amount", "range": [7, 10], "step": 0.1}}}, RAW)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), n=st.integers(30, 90), mode=st.sampled_from(["truth", "coin"]))
def test_no_calibration_ever_touches_a_hard_rule(seed: int, n: int, mode: str) -> None:
    ds = make_dataset(n, seed, mode)
    if min(sum(r.outcome for r in ds.records), n - sum(r.outcome for r in ds.records)) < FAST.min_each_outcome:
        return
    res = calibrate(ds, copy.deepcopy(RAW), settings=FAST, ope_settings=FAST_OPE)
    assert_keeps_hard_rules(res.calibrated_raw, RAW, load_tunables(RAW), seed)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), share=st.floats(0.01, 0.5))
def test_exploration_keeps_bounds_and_hard_rules(seed: int, share: float) -> None:
    from agents.calibration.explore import explored_plan

    rng = np.random.default_rng(seed)
    a, r = random_context(rng)
    p = plan(a, r, LOCKED)
    q = explored_plan(p, LOCKED, rng, share)
    assert not plan_violations(q, LOCKED)
    ex = q.diagnostics["exploration"]
    assert ex["planned"] == p.values() and np.isfinite(ex["log_density"]) and ex["share"] == share
