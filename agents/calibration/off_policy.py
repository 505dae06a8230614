"""Off-policy evaluation: a candidate policy's pass rate estimated from runs logged with exploration densities.

    data = OPEData.build(ds.records, locked, fit, ope_settings)
    est = evaluate(data, candidate_policy)      # est.ips, est.snips, est.dr, intervals, est.ess

The logged actions are continuous (the driven values jittered by `explore.py`, density logged), the
candidate policy is deterministic; the evaluated policy is the candidate's plan with the SAME jitter
kernel (the run's share), so a run's importance weight is the candidate kernel's density at the
logged draw over the logged density (0 where the draw is outside the candidate's window), clipped
at `clip`. The draw is the pre-rule one: the hard rules are one fixed map applied after it (they are
hard: no candidate moves them), so the density ratio of two policies' draws is the ratio that matters.

- IPS: mean of w * y.  SNIPS: sum(w * y) / sum(w).
- DR: mean of DM + w * (y - m(logged values)), DM the fitted model's pass probability averaged over
  `dm_samples` draws of the candidate's kernel; cross-fitted (each run's model never saw its fold).
- Effective sample size (sum w)^2 / sum w^2 and percentile bootstrap intervals over the runs.
Runs without a logged density are left out and counted; a NaN, zero or infinite density is an error
naming the run.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..planning.animation_director import plan
from ..planning.plan_types import Plan
from ..policy import Policy
from .dataset import Record
from .explore import EXPLORED, explore, windows
from .model import Logistic, context_vector, features, value_matrix
from .settings import _num, _read, check_tables

OPE_PATH = Path(__file__).parent / "off_policy.toml"
_DEGENERATE = 1e-12
_TOL = 1e-9

Fit = Callable[[np.ndarray, np.ndarray], Logistic]


class OffPolicyError(ValueError):
    """Logged exploration data an estimate cannot use (a NaN, zero or infinite density, a malformed draw)."""


@dataclass(frozen=True)
class OPESettings:
    clip: float
    bootstrap: int
    interval: float
    dm_samples: int
    folds: int
    min_logged: int
    seed: int
    refuse_margin: float
    select_candidates: int = 0
    select_move_share: float = 0.3
    select_dm_samples: int = 2
    check_holdout: float = 0.0


def parse_ope_settings(raw: dict[str, Any]) -> OPESettings:
    keys = {"estimate": ("clip", "bootstrap", "interval", "dm_samples", "folds", "min_logged", "seed"),
            "refuse": ("margin", "holdout_share"), "select": ("candidates", "move_share", "dm_samples")}
    check_tables(raw, keys, "off_policy", other_tables=False)
    e, path = raw["estimate"], "off_policy key estimate"
    return OPESettings(
        clip=_num(e, "clip", path, 1.0, 1e6),
        bootstrap=int(_num(e, "bootstrap", path, 10, 100000, integer=True)),
        interval=_num(e, "interval", path, 0.5, 0.999),
        dm_samples=int(_num(e, "dm_samples", path, 1, 10000, integer=True)),
        folds=int(_num(e, "folds", path, 2, 50, integer=True)),
        min_logged=int(_num(e, "min_logged", path, 2, 1e6, integer=True)),
        seed=int(_num(e, "seed", path, 0, 2**31, integer=True)),
        refuse_margin=_num(raw["refuse"], "margin", "off_policy key refuse", 0.0, 1.0),
        check_holdout=_num(raw["refuse"], "holdout_share", "off_policy key refuse", 0.0, 0.8),
        select_candidates=int(_num(raw["select"], "candidates", "off_policy key select", 0, 1000, integer=True)),
        select_move_share=_num(raw["select"], "move_share", "off_policy key select", 0.0, 1.0, open_lo=True),
        select_dm_samples=int(_num(raw["select"], "dm_samples", "off_policy key select", 1, 10000, integer=True)),
    )


def load_ope_settings(path: Path | None = None) -> OPESettings:
    return parse_ope_settings(_read(path or OPE_PATH, "off-policy settings"))


# ---- the logged side ------------------------------------------------------------------------------------
def check_logged(run_id: int, log_density: Any, share: Any, draw: Any) -> None:
    """A one-line error naming the run for a density or draw no estimate can use."""
    where = f"off-policy: run {run_id}"
    if not isinstance(log_density, int | float) or isinstance(log_density, bool) or math.isnan(log_density):
        raise OffPolicyError(f"{where}: the logged density is not a number ({log_density!r})")
    if log_density == -math.inf:
        raise OffPolicyError(f"{where}: the logged density is zero (log density -inf); a logged draw has a "
                             f"positive density")
    if log_density == math.inf:
        raise OffPolicyError(f"{where}: the logged density is infinite")
    if not isinstance(share, int | float) or isinstance(share, bool) or not 0 < share <= 1:
        raise OffPolicyError(f"{where}: the logged jitter share must be in (0, 1], got {share!r}")
    if not isinstance(draw, dict) or any(not isinstance(draw.get(n), int | float) or not math.isfinite(draw[n])
                                         for n in EXPLORED):
        raise OffPolicyError(f"{where}: the logged draw must give a finite number for each of {EXPLORED}")


def candidate_log_density(p: Plan, draw: dict[str, float], share: float) -> float:
    """Log density of the candidate's jitter kernel (uniform windows around its pre-rule values) at the logged
    draw; -inf where the draw lies outside a window or off a degenerate (zero-width) one."""
    out = 0.0
    for name, (lo, hi) in windows(p, share).items():
        x = float(draw[name])
        if hi - lo > _DEGENERATE:
            if not lo - _TOL <= x <= hi + _TOL:
                return -math.inf
            out -= math.log(hi - lo)
        elif abs(x - lo) > _TOL:
            return -math.inf
    return out


def covered_share(p: Plan, share: float, logged: Any) -> float:
    """The share of the candidate's kernel inside the logged kernel's windows (1: the log saw everywhere the
    candidate may go; below 1 the estimates miss that part: IPS counts it as failures, DR trusts the model
    there). NaN when the log did not record its windows."""
    if not isinstance(logged, dict):
        return float("nan")
    out = 1.0
    for name, (lo, hi) in windows(p, share).items():
        w = logged.get(name)
        if not (isinstance(w, list | tuple) and len(w) == 2):
            return float("nan")
        if hi - lo > _DEGENERATE:
            out *= max(0.0, min(hi, float(w[1])) - max(lo, float(w[0]))) / (hi - lo)
    return out


# ---- the estimators (pure numbers) ------------------------------------------------------------------------
@dataclass
class Estimate:
    ips: float
    snips: float
    dr: float
    dm: float
    intervals: dict[str, list[float]]
    ess: float
    runs: int
    excluded: int
    clipped: int
    zero_weight: int
    max_weight: float
    support: float = float("nan")  # mean share of the candidate's kernel the log covered (covered_share)
    boot: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {k: round(float(getattr(self, k)), 6) for k in ("ips", "snips", "dr", "dm", "ess",
                                                                               "max_weight", "support")}
        out |= {f"{k}_interval": [round(v, 6) for v in iv] for k, iv in self.intervals.items()}
        out |= {"runs": self.runs, "excluded_no_density": self.excluded, "clipped": self.clipped,
                "zero_weight": self.zero_weight}
        return out


def _snips(w: np.ndarray, y: np.ndarray) -> float:
    total = float(w.sum())
    return float((w * y).sum() / total) if total > 0 else float("nan")


def estimate(y: np.ndarray, w_raw: np.ndarray, m_logged: np.ndarray, dm: np.ndarray, s: OPESettings,
             rng: np.random.Generator, excluded: int = 0, support: float = float("nan")) -> Estimate:
    """IPS, SNIPS and DR with clipped weights, effective sample size and percentile bootstrap intervals."""
    arrays = {"outcomes": y, "weights": w_raw, "model terms": m_logged, "direct-method terms": dm}
    n = len(y)
    for name, a in arrays.items():
        if a.shape != (n,):
            raise OffPolicyError(f"off-policy: {name} must be one number per run ({n}), got shape {a.shape}")
        if not np.all(np.isfinite(a)):
            raise OffPolicyError(f"off-policy: {name} hold a NaN or infinite value")
    if n == 0:
        raise OffPolicyError("off-policy: no logged run with a density to evaluate on")
    if np.any(w_raw < 0):
        raise OffPolicyError("off-policy: importance weights must be >= 0")
    w = np.minimum(w_raw, s.clip)
    phi = dm + w * (y - m_logged)
    point = {"ips": float((w * y).mean()), "snips": _snips(w, y), "dr": float(phi.mean())}
    idx = rng.integers(0, n, (s.bootstrap, n))
    boot = {"ips": (w[idx] * y[idx]).mean(axis=1), "dr": phi[idx].mean(axis=1)}
    wsum = w[idx].sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        boot["snips"] = np.where(wsum > 0, (w[idx] * y[idx]).sum(axis=1) / wsum, np.nan)
    tail = (1 - s.interval) / 2
    intervals = {}
    for k, b in boot.items():
        finite = b[np.isfinite(b)]
        intervals[k] = [float(np.quantile(finite, tail)), float(np.quantile(finite, 1 - tail))] if len(finite) else \
            [float("nan"), float("nan")]
    ess = float(w.sum() ** 2 / (w ** 2).sum()) if float((w ** 2).sum()) > 0 else 0.0
    return Estimate(ips=point["ips"], snips=point["snips"], dr=point["dr"], dm=float(dm.mean()),
                    intervals=intervals, ess=ess, runs=n, excluded=excluded, clipped=int((w_raw > s.clip).sum()),
                    zero_weight=int((w_raw == 0).sum()), max_weight=float(w_raw.max()), support=support, boot=boot)


# ---- the log and the model, once per calibration ----------------------------------------------------------
@dataclass
class OPEData:
    """The density-bearing runs, their contexts and cross-fitted models (a model per run, fitted without its fold)."""

    records: list[Record]
    ctx: np.ndarray
    y: np.ndarray
    m_logged: np.ndarray
    models: list[Logistic]
    locked: Policy
    settings: OPESettings
    excluded: int

    @classmethod
    def build(cls, records: Sequence[Record], locked: Policy, fit: Fit, s: OPESettings) -> OPEData:
        logged, excluded = [], 0
        for r in records:
            if r.exploration is None:
                excluded += 1
                continue
            e = r.exploration
            check_logged(r.run_id, e.log_density, e.share, e.draw)
            logged.append(r)
        ctx_all = np.stack([context_vector(r.analysis, r.reference, locked) for r in records]) if records else \
            np.zeros((0, 6))
        X_all = features(ctx_all, value_matrix([r.values for r in records]), locked)
        y_all = np.array([r.outcome for r in records], dtype=float)
        rng = np.random.default_rng(s.seed)
        fold_of = rng.permutation(len(records)) % s.folds
        fold_models: dict[int, Logistic] = {}
        for k in range(s.folds):
            train = fold_of != k
            if train.sum() >= 2 and y_all[train].min() != y_all[train].max():
                fold_models[k] = fit(X_all[train], y_all[train])
        keep = [i for i, r in enumerate(records) if r.exploration is not None and int(fold_of[i]) in fold_models]
        excluded += len(logged) - len(keep)
        models = [fold_models[int(fold_of[i])] for i in keep]
        m_logged = np.array([float(m.predict(X_all[i:i + 1])[0]) for m, i in zip(models, keep, strict=True)])
        return cls(records=[records[i] for i in keep], ctx=ctx_all[keep], y=y_all[keep], m_logged=m_logged,
                   models=models, locked=locked, settings=s, excluded=excluded)


def weights_and_dm(data: OPEData, policy: Policy, *,
                   with_dm: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per logged run: the raw importance weight of `policy` (with the run's kernel), its direct-method term and
    the share of its kernel the logged kernel covered."""
    rng = np.random.default_rng(data.settings.seed)
    n = len(data.records)
    w, dm, cover = np.zeros(n), np.zeros(n), np.zeros(n)
    for i, r in enumerate(data.records):
        e = r.exploration
        assert e is not None  # noqa: S101  (OPEData keeps only density-bearing runs)
        p = plan(r.analysis, r.reference, policy)
        lc = candidate_log_density(p, e.draw, e.share)
        w[i] = math.exp(lc - e.log_density) if lc > -math.inf else 0.0
        cover[i] = covered_share(p, e.share, e.windows)
        if with_dm:
            draws = [explore(p, policy, rng, e.share)[0] for _ in range(data.settings.dm_samples)]
            X = features(np.repeat(data.ctx[i:i + 1], len(draws), axis=0), value_matrix(draws), data.locked)
            dm[i] = float(data.models[i].predict(X).mean())
    return w, dm, cover


def evaluate(data: OPEData, policy: Policy) -> Estimate:
    w, dm, cover = weights_and_dm(data, policy)
    finite = cover[np.isfinite(cover)]
    return estimate(data.y, w, data.m_logged, dm, data.settings, np.random.default_rng(data.settings.seed + 1),
                    excluded=data.excluded, support=float(finite.mean()) if len(finite) else float("nan"))


@dataclass
class PolicyComparison:
    """The current and the calibrated policy estimated on the same runs (same resamples: paired), and the refusal."""

    current: Estimate | None
    calibrated: Estimate | None
    note: str
    refused: str | None = None
    level: float = 0.9

    def provenance(self) -> dict[str, Any]:
        """Flat (the overlay's [provenance.off_policy] table): `current_dr`, `calibrated_dr_interval`, ..."""
        out: dict[str, Any] = {"note": self.note, "refused": self.refused or ""}
        if self.current is not None and self.calibrated is not None:
            for label, est in (("current", self.current), ("calibrated", self.calibrated)):
                out |= {f"{label}_{k}": v for k, v in est.summary().items()}
            out["dr_gain_interval"] = self.dr_gain_interval()
        return out

    def dr_gain_interval(self) -> list[float]:
        """Paired bootstrap interval of DR(calibrated) - DR(current) (both estimated on the same resamples)."""
        if self.current is None or self.calibrated is None:
            return []
        diff = self.calibrated.boot["dr"] - self.current.boot["dr"]
        a = (1 - self.level) / 2
        return [round(float(np.quantile(diff, a)), 6), round(float(np.quantile(diff, 1 - a)), 6)]


def refusal(current: Estimate, calibrated: Estimate, s: OPESettings) -> str | None:
    """The rule: refuse when the calibrated DR lower bound is below the current policy's by more than the margin."""
    lo_cal, lo_cur = calibrated.intervals["dr"][0], current.intervals["dr"][0]
    if lo_cal < lo_cur - s.refuse_margin:
        return (f"the calibrated policy's doubly robust lower bound {lo_cal:.3f} is below the current policy's "
                f"{lo_cur:.3f} by more than {s.refuse_margin:g} ({s.interval:.0%} intervals, off_policy.toml "
                f"refuse.margin)")
    return None


def split_for_check(records: Sequence[Record], s: OPESettings) -> tuple[list[Record], list[Record]]:
    """(runs the choice may use, explored runs kept for the estimates and the refusal check). With
    refuse.holdout_share 0 both are every run (the check then re-uses what the choice maximised)."""
    explored = [i for i, r in enumerate(records) if r.exploration is not None]
    n_hold = int(round(s.check_holdout * len(explored)))
    if n_hold == 0:
        return list(records), list(records)
    held = set(np.random.default_rng(s.seed + 3).permutation(explored)[:n_hold].tolist())
    return ([r for i, r in enumerate(records) if i not in held], [r for i, r in enumerate(records) if i in held])


def compare_policies(records: Sequence[Record], locked: Policy, current: Policy, calibrated: Policy, fit: Fit,
                     s: OPESettings) -> PolicyComparison:
    """IPS/SNIPS/DR of both policies; too few density-bearing runs: no estimate (said so) and no refusal."""
    n_logged = sum(1 for r in records if r.exploration is not None)
    if n_logged < s.min_logged:
        return PolicyComparison(None, None, f"no off-policy estimate: {n_logged} of {len(records)} run(s) carry a "
                                            f"logged exploration density, {s.min_logged} needed (log runs with "
                                            f"--explore)")
    data = OPEData.build(records, locked, fit, s)
    if len(data.records) < s.min_logged:
        return PolicyComparison(None, None, f"no off-policy estimate: {len(data.records)} usable run(s) with a "
                                            f"density after cross-fitting, {s.min_logged} needed")
    cur, cal = evaluate(data, current), evaluate(data, calibrated)
    note = (f"off-policy estimates on {len(data.records)} explored run(s) ({data.excluded} without a density "
            f"left out), weights clipped at {s.clip:g}")
    return PolicyComparison(cur, cal, note, refusal(cur, cal, s), s.interval)
