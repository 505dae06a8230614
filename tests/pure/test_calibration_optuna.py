"""Tier 1: Optuna as calibration's second search back end: (hypothesis) it never yields an overlay that moves a
hard rule, leaves a trust region or breaks a hard rule in a plan; the warm start really puts the log's policies
into the stored study; bad options and a missing optuna are one line naming what is wrong."""

from __future__ import annotations

import copy
import dataclasses
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import optuna
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents.calibration.calibrate import calibrate
from agents.calibration.dataset import Dataset, Record
from agents.calibration.explore import explore
from agents.calibration.model import context_vector, features, fit_logistic, value_matrix
from agents.calibration.optuna_search import OptunaSearch, judge, storage_url
from agents.calibration.optuna_space import (
    OptunaSettings,
    free_space,
    parse_optuna_settings,
    policy_from_params,
    study_path,
)
from agents.calibration.search import Evaluator, get_key
from agents.calibration.settings import CalibrationConfigError, load_settings, load_tunables
from agents.planning.animation_director import plan
from agents.policy import parse_policy, raw_default_policy
from agents.policy.overlay import MovedValue, apply_overlay, dump_overlay, load_with_overlay
from host.calibration_checks import assert_keeps_hard_rules
from host.records import random_context

REPO = Path(__file__).resolve().parents[2]
RAW = raw_default_policy()
LOCKED = parse_policy(RAW)
TUN = load_tunables(RAW)
FAST = dataclasses.replace(load_settings(), bootstrap=6, max_rounds=3, l2_grid=(1.0, 10.0), cv_folds=3)
FEW = OptunaSettings(n_trials=8, seed=0, startup_trials=4)
# Two overlays earlier calibrations could have written (inside the trust region) and one outside it.
OVERLAY_A = {"classify.complex_threshold": 0.45, "cases.single_simple.ip2_weight": [0.1, 0.45]}
OVERLAY_B = {"cases.multi_object.denoise2": [0.2, 0.3]}
OUTSIDE = {"classify.complex_threshold": 0.9}


def make_records(n: int, seed: int, overlays: list[dict | None]) -> list[Record]:
    """n runs explored around the locked plan; run k was planned with overlays[k % len(overlays)]."""
    rng = np.random.default_rng(seed)
    recs = []
    for k in range(n):
        a, r = random_context(rng)
        values, *_ = explore(plan(a, r, LOCKED), LOCKED, rng, 0.3)
        z = 0.5 - 2.0 * (values["cfg2"] - 7.2) * values["ip2_weight"] - 1.5 * (values["cfg1"] - 8.2) ** 2
        recs.append(Record(run_id=k + 1, analysis=a, reference=r, values=values,
                           outcome=int(rng.random() < 1 / (1 + np.exp(-z))), outcome_source="verdict",
                           created_at=1.7e9 + k, planned_with=overlays[k % len(overlays)]))
    return recs


def evaluator_for(recs: list[Record]) -> Evaluator:
    """The evaluator calibrate() builds (models fitted on the runs, bootstrap refits), without its trust gate."""
    ctx = np.stack([context_vector(r.analysis, r.reference, LOCKED) for r in recs])
    y = np.array([r.outcome for r in recs], dtype=float)
    X = features(ctx, value_matrix([r.values for r in recs]), LOCKED)
    rng = np.random.default_rng(0)
    models = [fit_logistic(X, y, 3.0, 50, 1e-8)]
    for _ in range(5):
        i = rng.integers(0, len(y), len(y))
        if y[i].min() != y[i].max():
            models.append(fit_logistic(X[i], y[i], 3.0, 50, 1e-8))
    return Evaluator([r.analysis for r in recs], [r.reference for r in recs], ctx, models, LOCKED,
                     jitter=FAST.jitter, support_share=FAST.support_share)


def _check_hard_rules(raw: dict, seed: int) -> None:
    assert_keeps_hard_rules(raw, RAW, TUN, seed)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), n=st.integers(30, 70), trials=st.integers(3, 10))
def test_the_optuna_back_end_never_breaks_a_hard_rule(seed: int, n: int, trials: int) -> None:
    recs = make_records(n, seed, [None, OVERLAY_A])
    if len({r.outcome for r in recs}) < 2:
        return
    with tempfile.TemporaryDirectory() as tmp:
        search = OptunaSearch(recs, Path(tmp) / "study.sqlite3",
                              OptunaSettings(n_trials=trials, seed=seed, startup_trials=2))
        raw, moves, gain = search(copy.deepcopy(RAW), TUN, {}, evaluator_for(recs), FAST)
    _check_hard_rules(raw, seed)
    assert len(gain) >= 1 and all(m.key in TUN and m.value != m.was for m in moves)
    for m in moves:
        assert get_key(raw, m.key) == m.value and get_key(RAW, m.key) == m.was
    # The overlay it yields loads the way every loader reads it.
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ov.toml"
        moved = [MovedValue(m.key, m.value, m.was, "test") for m in moves]
        path.write_text(dump_overlay({"policy_version": RAW["version"], "run_count": n}, moved))
        assert load_with_overlay(path).applied


def test_random_candidates_with_broken_rules_are_infeasible() -> None:
    """judge(): a policy the loader refuses, or one outside the log's support, is never feasible."""
    ev = evaluator_for(make_records(40, 3, [None]))
    bad = copy.deepcopy(RAW)
    bad["cases"]["single_simple"]["cfg1"] = [7.5, 9.0]  # a case's CFG floor must stay the global minimum
    assert not judge(bad, ev).feasible and judge(bad, ev).constraints[0] > 0
    assert judge(copy.deepcopy(RAW), ev).feasible
    assert "cases.single_simple.cfg1[0]" not in free_space(RAW, TUN)  # the pinned floor is not searched
    assert "cases.single_simple.cfg1[1]" in free_space(RAW, TUN)


def test_warm_start_puts_the_logs_policies_into_the_stored_study(tmp_path: Path) -> None:
    recs = make_records(45, 5, [None, None, OVERLAY_A, OVERLAY_B, OUTSIDE])
    ev = evaluator_for(recs)
    study_file = tmp_path / "m4_calibration_optuna.sqlite3"
    search = OptunaSearch(recs, study_file, FEW)
    search(copy.deepcopy(RAW), TUN, {}, ev, FAST)
    assert search.warm_trials == 3 and search.skipped_policies == 1  # OUTSIDE leaves the trust region
    [summary] = optuna.get_all_study_summaries(storage_url(study_file))
    study = optuna.load_study(study_name=summary.study_name, storage=storage_url(study_file))
    assert len(study.trials) == 3 + FEW.n_trials and study.user_attrs["run_count"] == 45
    logged = [t for t in study.trials if t.user_attrs.get("source") == "run log"]
    assert [t.number for t in logged] == [0, 1, 2]
    by_overlay = {repr(sorted(t.user_attrs["overlay"].items())): t for t in logged}
    runs = {repr(sorted(o.items())): sum(1 for r in recs if (r.planned_with or {}) == o) for o in ({}, OVERLAY_A,
                                                                                                  OVERLAY_B)}
    assert {k: t.user_attrs["runs"] for k, t in by_overlay.items()} == runs
    a = by_overlay[repr(sorted(OVERLAY_A.items()))]
    assert a.params["classify.complex_threshold"] == pytest.approx(0.45)
    assert [a.params["cases.single_simple.ip2_weight[0]"], a.params["cases.single_simple.ip2_weight[1]"]] == \
        pytest.approx([0.1, 0.45])
    # each logged trial is scored by the same objective as the sampled ones
    assert a.value == pytest.approx(judge(policy_from_params(RAW, TUN, a.params), ev).value)
    assert all(t.user_attrs["constraints"] == [0.0, 0.0, 0.0] for t in logged if not t.user_attrs["overlay"])
    # A second calibration in the same file enqueues the first study's best trial.
    again = OptunaSearch(recs, study_file, FEW)
    again(copy.deepcopy(RAW), TUN, {}, ev, FAST)
    assert again.enqueued == 1 and len(optuna.get_all_study_summaries(storage_url(study_file))) == 2


def test_calibrate_with_the_optuna_back_end_records_its_tool(tmp_path: Path) -> None:
    recs = make_records(60, 7, [None])  # a log whose model beats the current rules held out (else nothing moves)
    ds = Dataset(records=recs, total_rows=len(recs))
    search = OptunaSearch(recs, tmp_path / "s.sqlite3", OptunaSettings(n_trials=30, seed=0, startup_trials=10))
    res = calibrate(ds, copy.deepcopy(RAW), settings=FAST, search=search)
    assert res.predicted["model_trusted"] == 1.0 and res.moved
    _check_hard_rules(res.calibrated_raw, 7)
    assert "Optuna TPE" in res.provenance["tool"] and (tmp_path / "s.sqlite3").is_file()
    assert all("Optuna TPE, best feasible of" in m.reason for m in res.moved)
    assert search.study_name in res.provenance["tool"]  # the overlay names the study it came from
    assert res.predicted["calibrated"] > res.predicted["current"]


def test_optuna_settings_name_the_bad_key() -> None:
    good = {"n_trials": 10, "seed": 0, "startup_trials": 5}
    assert parse_optuna_settings({"optuna": good}) == OptunaSettings(10, 0, 5)
    with pytest.raises(CalibrationConfigError, match=r"optuna\.n_trials: expected an integer in \[1, 10000\], got 0"):
        parse_optuna_settings({"optuna": {**good, "n_trials": 0}})
    with pytest.raises(CalibrationConfigError, match=r"optuna\.seed: .* got -1"):
        parse_optuna_settings({"optuna": {**good, "seed": -1}})
    with pytest.raises(CalibrationConfigError, match=r"optuna\.startup_trials: .* got 2\.5"):
        parse_optuna_settings({"optuna": {**good, "startup_trials": 2.5}})
    with pytest.raises(CalibrationConfigError, match=r"optuna\.trials: unknown key"):
        parse_optuna_settings({"optuna": {**good, "trials": 3}})
    with pytest.raises(CalibrationConfigError, match="calibration key optuna: missing table"):
        parse_optuna_settings({})


def test_the_study_file_has_a_fixed_name_beside_the_log(tmp_path: Path) -> None:
    odd = tmp_path / "a?b#c%20 d"
    odd.mkdir()
    path = study_path(odd / "my runs.sqlite3")
    assert path == (odd / "m4_calibration_optuna.sqlite3").resolve()
    from sqlalchemy.engine import make_url

    assert make_url(storage_url(path)).database == str(path)  # the folder's characters are escaped, not parsed


def test_optuna_is_not_imported_until_the_back_end_runs() -> None:
    code = ("import sys; import agents.calibration.optuna_search, agents.calibration.optuna_space, "
            "cli.calibrate_optuna, cli.calibrate_cmd; assert 'optuna' not in sys.modules, 'optuna imported'")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def _write_log(path: Path, recs: list[Record]) -> None:
    from agents.runtime.run_log import RunLog

    sketch = REPO / "tests" / "fixtures" / "sketches" / "house_line.png"
    with RunLog(path) as log:
        for r in recs:
            p = plan(r.analysis, r.reference, LOCKED)
            rid = log.start_run(sketch=sketch, reference=None, server="test")
            log.record(rid, plan={**p.to_dict(), **r.values}, diagnostics=p.diagnostics,
                       metrics={"analysis": r.analysis.to_dict(), "reference": r.reference.to_dict()},
                       verdict={"passed": bool(r.outcome)}, accepted=bool(r.outcome))
            log.finish(rid, status="done")


def test_cli_backend_optuna_writes_overlay_and_study(tmp_path: Path, monkeypatch, capsys) -> None:
    from agents.policy.overlay import read_overlay
    from cli.calibrate_cmd import main as calibrate_main

    monkeypatch.delenv("M4_POLICY_OVERLAY", raising=False)
    monkeypatch.setattr("agents.calibration.optuna_space.load_optuna_settings",
                        lambda path=None: OptunaSettings(n_trials=20, seed=0, startup_trials=5))
    log = tmp_path / "m4_runs.sqlite3"
    _write_log(log, make_records(60, 3, [None]))  # a log whose model beats the current rules held out
    assert calibrate_main(["--log", str(log), "--backend", "optuna", "--dry-run"]) == 0
    assert not (tmp_path / "m4_calibration_optuna.sqlite3").exists()  # a dry run writes nothing
    capsys.readouterr()
    assert calibrate_main(["--log", str(log), "--backend", "optuna"]) == 0
    captured = capsys.readouterr()
    assert "optuna 100%|" in captured.err and "20/20" in captured.err  # the trial bar
    assert (tmp_path / "m4_calibration_optuna.sqlite3").is_file()
    overlay = read_overlay(tmp_path / "m4_policy_overlay.toml", RAW)
    assert "Optuna TPE" in overlay.provenance["tool"] and overlay.provenance["run_count"] == 60
    assert overlay.moved and all(m.key in TUN for m in overlay.moved)
    _check_hard_rules(apply_overlay(RAW, overlay), 3)


def test_cli_bad_backend_and_missing_optuna_are_one_line(tmp_path: Path, monkeypatch, capsys) -> None:
    import importlib.util

    from cli.calibrate_cmd import main as calibrate_main

    log = tmp_path / "m4_runs.sqlite3"
    _write_log(log, make_records(12, 2, [None]))
    with pytest.raises(SystemExit) as bad:
        calibrate_main(["--log", str(log), "--backend", "ppo"])
    assert bad.value.code == 2 and "--backend" in capsys.readouterr().err
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "optuna" else real(name, *a))
    assert calibrate_main(["--log", str(log), "--backend", "optuna"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: --backend optuna: the optional optuna package is not installed (pip install optuna); "
                   "the default back end needs nothing extra"]
    assert not (tmp_path / "m4_calibration_optuna.sqlite3").exists()
