"""`calibrate()`: a dataset of logged runs -> held-out scores, bootstrap intervals and the overlay's moved values.

    ds = load_dataset(log)
    result = calibrate(ds, raw_default_policy())
    text = dump_overlay(result.provenance, result.moved)

Too few usable runs raise NotEnoughRuns saying how many are needed. No move ever touches a key
outside tunables.toml, leaves a tunable's declared range or trust region, or yields a policy the
loader rejects; every plan under the result still passes the Director's hard rules.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..planning.director_signals import classify, sanitise_inputs
from ..policy import Policy, parse_policy
from ..policy.overlay import MovedValue
from .dataset import Dataset
from .model import (
    Logistic,
    brier,
    case_rate_baseline,
    choose_l2,
    context_vector,
    features,
    fit_logistic,
    log_loss,
    value_matrix,
)
from .off_policy import OPESettings, PolicyComparison, compare_policies, load_ope_settings, split_for_check
from .search import Evaluator, Move, greedy_search
from .select import select_by_dr
from .settings import Settings, Tunable, load_settings, load_tunables

Progress = Callable[[str], None]
# A search back end: (locked raw, tunables, quantiles, evaluator, settings, progress=) -> (raw, moves, gains).
SearchBackend = Callable[..., tuple[dict[str, Any], list[Move], np.ndarray]]


class NotEnoughRuns(ValueError):
    """The log holds fewer usable runs than a fit needs."""


@dataclass
class CalibrationResult:
    moved: list[MovedValue]
    provenance: dict[str, Any]
    heldout: dict[str, float]
    predicted: dict[str, float]
    calibrated_raw: dict[str, Any]
    reliability: dict[str, list[float]] = field(default_factory=dict)
    distributions: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    moves: list[Move] = field(default_factory=list)
    off_policy: PolicyComparison | None = None  # IPS/SNIPS/DR of the current and calibrated policy, and the refusal


def _iso(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def check_enough(ds: Dataset, s: Settings) -> None:
    n = len(ds.records)
    good = sum(r.outcome for r in ds.records)
    bad = n - good
    if n >= s.min_runs and min(good, bad) >= s.min_each_outcome:
        return
    dropped = "; ".join(f"{k}: {v}" for k, v in sorted(ds.dropped.items())) or "none"
    raise NotEnoughRuns(f"calibration needs at least {s.min_runs} usable runs with at least {s.min_each_outcome} "
                        f"good and {s.min_each_outcome} bad outcomes; the log has {n} usable ({good} good, {bad} "
                        f"bad) of {ds.total_rows} row(s); dropped: {dropped}. Log and rate "
                        f"{max(s.min_runs - n, 0) or 'more'} more run(s) and calibrate again")


def _interval(x: np.ndarray, level: float) -> list[float]:
    a = (1 - level) / 2
    return [float(np.quantile(x, a)), float(np.quantile(x, 1 - a))]


def _fit(X: np.ndarray, y: np.ndarray, s: Settings, rng: np.random.Generator) -> Logistic:
    l2 = choose_l2(X, y, s.l2_grid, s.cv_folds, s.newton_iterations, s.tolerance, s.probability_floor, rng)
    return fit_logistic(X, y, l2, s.newton_iterations, s.tolerance)


def heldout_scores(X: np.ndarray, y: np.ndarray, cases: list[str], s: Settings,
                   rng: np.random.Generator) -> tuple[dict[str, float], dict[str, list[float]]]:
    """Model vs the current rules (per-case pass rate), every run held out once (k-fold, the ridge strength
    chosen inside each training part), with a bootstrap interval on the log-loss gain."""
    order = rng.permutation(len(y))
    folds = max(2, min(s.cv_folds, int(round(1 / s.holdout_fraction))))
    p_model, p_rules = np.full(len(y), np.nan), np.full(len(y), np.nan)
    l2s = []
    for part in np.array_split(order, folds):
        train = np.setdiff1d(order, part)
        if y[train].min() == y[train].max():
            continue
        model = _fit(X[train], y[train], s, rng)
        l2s.append(model.l2)
        p_model[part] = model.predict(X[part])
        p_rules[part] = case_rate_baseline([cases[i] for i in train], y[train], [cases[i] for i in part])
    keep = np.isfinite(p_model)
    yt, pm, pr = y[keep], p_model[keep], p_rules[keep]
    fl = s.probability_floor
    out = {"model_log_loss": log_loss(yt, pm, fl), "rules_log_loss": log_loss(yt, pr, fl),
           "model_brier": brier(yt, pm), "rules_brier": brier(yt, pr), "heldout_runs": float(len(yt)),
           "l2": float(np.median(l2s)) if l2s else float("nan")}
    boots = []
    for _ in range(s.bootstrap):
        i = rng.integers(0, len(yt), len(yt))
        boots.append(log_loss(yt[i], pr[i], fl) - log_loss(yt[i], pm[i], fl))
    lo, hi = _interval(np.array(boots), s.interval)
    out["log_loss_gain_lo"], out["log_loss_gain_hi"] = lo, hi
    return out, {"p": pm.tolist(), "y": yt.tolist()}


def _reason(m: Move, n_models: int) -> str:
    text = (f"predicted pass rate +{m.gain:.3f} on the logged requests; {m.agree:.0%} of {n_models} bootstrap "
            f"refits agree")
    return f"{m.quantile_note}; {text}" if m.quantile_note else text


def _distributions(ds: Dataset, locked: Policy, calibrated: Policy) -> dict[str, dict[str, list[float]]]:
    out: dict[str, dict[str, list[float]]] = {}
    for label, pol in (("before", locked), ("after", calibrated)):
        for r in ds.records:
            inputs = sanitise_inputs(r.analysis, r.reference, pol, None)
            case, _scale = classify(inputs, pol)
            for sig in ("complexity_score", "subject_scale", "line_quality_score"):
                out.setdefault(f"{sig}|{label}", {}).setdefault(case, []).append(float(getattr(inputs, sig)))
    return out


def calibrate(ds: Dataset, policy_raw: Mapping[str, Any], *, tunables: Mapping[str, Tunable] | None = None,
              settings: Settings | None = None, progress: Progress | None = None,
              search: SearchBackend | None = None, ope_settings: OPESettings | None = None) -> CalibrationResult:
    """search: the back end that moves values (default greedy_search; agents/calibration/optuna_search.py)."""
    s = settings or load_settings()
    tun = tunables if tunables is not None else load_tunables(policy_raw)
    check_enough(ds, s)
    rng = np.random.default_rng(s.seed)
    locked = parse_policy(policy_raw, source="<locked policy>")
    say = progress or (lambda _m: None)
    recs = ds.records
    ctx = np.stack([context_vector(r.analysis, r.reference, locked) for r in recs])
    y = np.array([r.outcome for r in recs], dtype=float)
    X = features(ctx, value_matrix([r.values for r in recs]), locked)
    cases: list[str] = [classify(sanitise_inputs(r.analysis, r.reference, locked, None), locked)[0] for r in recs]
    say(f"{len(recs)} usable runs: held-out scoring")
    heldout, reliability = heldout_scores(X, y, cases, s, rng)
    say(f"fitting the model and {s.bootstrap} bootstrap refits")
    main = _fit(X, y, s, rng)
    models = [main]
    for _ in range(s.bootstrap):
        i = rng.integers(0, len(y), len(y))
        if y[i].min() != y[i].max():
            models.append(fit_logistic(X[i], y[i], main.l2, s.newton_iterations, s.tolerance))
    quantiles = {k: float(np.quantile([getattr(r.analysis, t.signal) for r in recs], t.quantile))
                 for k, t in tun.items() if t.signal is not None and t.quantile is not None}
    evaluator = Evaluator([r.analysis for r in recs], [r.reference for r in recs], ctx, models, locked,
                          jitter=s.jitter, support_share=s.support_share)
    trusted = heldout["model_log_loss"] < heldout["rules_log_loss"]
    if trusted:
        say("searching the trust region")
        raw, moves, gain = (search or greedy_search)(dict(policy_raw), tun, quantiles, evaluator, s, progress=say)
    else:  # a model that predicts held-out runs no better than the current rules must not move them
        say("the model does not beat the current rules on held-out runs: nothing moves")
        raw, moves, gain = copy.deepcopy(dict(policy_raw)), [], np.zeros(len(models))
    moved = [MovedValue(key=m.key, value=m.value, was=m.was, reason=_reason(m, len(models))) for m in moves]
    ope_s = ope_settings or load_ope_settings()
    if search is not None and ope_settings is None:  # another back end's result stands unless the DR check refuses it
        ope_s = replace(ope_s, select_candidates=0)
    fit = lambda Xt, yt: fit_logistic(Xt, yt, main.l2, s.newton_iterations, s.tolerance)  # noqa: E731
    say(f"choosing among the greedy result and {ope_s.select_candidates} trust-region candidates by doubly robust "
        f"lower bound")
    choose_on, check_on = split_for_check(recs, ope_s)
    chosen = select_by_dr(choose_on, policy_raw, raw, moved, tun, quantiles, locked, fit, ope_s)
    if chosen is not None:
        raw, moved = chosen.raw, chosen.moved
    calibrated = parse_policy(raw, source="<calibrated>")
    base_scores = evaluator.score(dict(policy_raw))
    if base_scores is None:
        raise NotEnoughRuns("calibration: the locked policy does not validate")
    if chosen is not None and chosen.chosen != "greedy":  # the model's view of what DR chose (None: off its support)
        scores = evaluator.score(raw)
        gain = scores - base_scores if scores is not None else np.full(len(models), np.nan)
    times = [r.created_at for r in recs]
    sources = ds.sources
    predicted = {"current": float(base_scores[0]), "calibrated": float(base_scores[0] + gain[0]),
                 "gain_mean": float(gain.mean()), "model_trusted": float(trusted)}
    predicted["gain_lo"], predicted["gain_hi"] = _interval(gain, s.interval)
    provenance: dict[str, Any] = {
        "policy_version": str(policy_raw.get("version")), "created_at": _iso(dt.datetime.now(dt.UTC).timestamp()),
        "run_count": len(recs), "first_run": _iso(min(times)), "last_run": _iso(max(times)),
        "tool": getattr(search, "tool", "m4 calibrate (ridge logistic pass-probability model, greedy trust-region "
                                        "search, candidates chosen by doubly robust lower bound)"),
        "outcome_source": f"{sources.get('rating', 0)} rated, {sources.get('verdict', 0)} by the automatic verdict",
        "heldout": {k: round(v, 6) for k, v in heldout.items()} | {k: round(v, 6) for k, v in predicted.items()},
    }
    say("off-policy evaluation (IPS, SNIPS, doubly robust) of the current and the calibrated policy")
    ope = compare_policies(check_on, locked, locked, calibrated, fit, ope_s)
    if check_on is not recs and len(check_on) < len(recs):
        ope.note += f"; these {len(check_on)} explored run(s) were held out from the choice"
    provenance["off_policy"] = ope.provenance() | ({"chosen": chosen.chosen, "candidates": chosen.candidates}
                                                   if chosen is not None else {"chosen": "greedy"})
    return CalibrationResult(moved=moved, provenance=provenance, heldout=heldout, predicted=predicted,
                             calibrated_raw=raw, reliability=reliability,
                             distributions=_distributions(ds, locked, calibrated), moves=moves, off_policy=ope)
