"""The pass-probability model: features of (signals x plan values), a ridge-regularised logistic fit (numpy only),
held-out scores (log loss, Brier) and the "current rules" baseline they are compared with.

The features carry the interactions seed 004 names (KS2 cfg with IP2, CFG with structure
confidence S, Union lock with object size and complexity) as products, and squares so a value can
have a best point inside its range.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..measure.analysis_types import ReferenceReport, VisualAnalysis
from ..planning.director_signals import compute_signals, sanitise_inputs
from ..policy import Policy

CONTEXT = ("S", "R", "D", "P", "complexity", "scale")
VALUES = ("cfg1", "cfg2", "denoise1", "denoise2", "union_strength", "pose_strength", "ip1_weight", "ip2_weight")
FEATURES = (*CONTEXT, *VALUES, "cfg1^2", "cfg2^2", "denoise2^2", "union^2", "ip2^2", "cfg1*S", "cfg2*ip2",
            "union*scale*complexity", "union*S", "ip1*R", "denoise2*D", "cfg2*D")


class FitError(ValueError):
    """The data cannot support a fit (one outcome only, or a singular system)."""


def context_vector(analysis: VisualAnalysis, reference: ReferenceReport, policy: Policy) -> np.ndarray:
    """S, R, D, P (anatomy risk, no case bias), complexity and subject scale of one request, sanitised."""
    inputs = sanitise_inputs(analysis, reference, policy, None)
    sig = compute_signals(inputs, "single_simple", policy)  # single_simple: P without a case's pose bias
    return np.array([sig.S, sig.R, sig.D, inputs.anatomy_risk_score, inputs.complexity_score,
                     inputs.subject_scale], dtype=float)


def value_matrix(values: Sequence[dict[str, float]]) -> np.ndarray:
    return np.array([[float(v[n]) for n in VALUES] for v in values], dtype=float).reshape(-1, len(VALUES))


def features(ctx: np.ndarray, vals: np.ndarray, policy: Policy) -> np.ndarray:
    """The design matrix (n x len(FEATURES)) from contexts (n x 6) and values (n x 8), CFG scaled to 0..1."""
    g_lo, g_hi = policy.cfg["global_min"], policy.cfg["global_max"]
    S, R, D, _P, cx, sc = (ctx[:, i] for i in range(len(CONTEXT)))
    v = vals.copy()
    v[:, 0] = (v[:, 0] - g_lo) / (g_hi - g_lo)
    v[:, 1] = (v[:, 1] - g_lo) / (g_hi - g_lo)
    c1, c2, _d1, d2, u, _po, ip1, ip2 = (v[:, i] for i in range(len(VALUES)))
    extra = np.stack([c1 ** 2, c2 ** 2, d2 ** 2, u ** 2, ip2 ** 2, c1 * S, c2 * ip2, u * sc * cx, u * S, ip1 * R,
                      d2 * D, c2 * D], axis=1)
    return np.concatenate([ctx, v, extra], axis=1)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return np.asarray(0.5 * (1.0 + np.tanh(0.5 * z)))


@dataclass
class Logistic:
    """Standardised ridge logistic regression; the intercept is not penalised."""

    coef: np.ndarray
    intercept: float
    mean: np.ndarray
    scale: np.ndarray
    l2: float

    def predict(self, X: np.ndarray) -> np.ndarray:
        return _sigmoid(((X - self.mean) / self.scale) @ self.coef + self.intercept)


def fit_logistic(X: np.ndarray, y: np.ndarray, l2: float, iterations: int, tolerance: float) -> Logistic:
    """Newton-Raphson on the penalised log likelihood (a few dozen features, <= thousands of rows)."""
    if X.ndim != 2 or len(X) != len(y) or len(y) == 0:
        raise FitError(f"fit: expected a design matrix with one row per outcome, got {X.shape} and {y.shape}")
    if y.min() == y.max():
        raise FitError("fit: every outcome is the same; a pass-probability model needs both good and bad runs")
    mean = X.mean(axis=0)
    scale = X.std(axis=0)
    scale[scale < 1e-9] = 1.0
    Z = np.concatenate([np.ones((len(X), 1)), (X - mean) / scale], axis=1)
    w = np.zeros(Z.shape[1])
    w[0] = np.log(y.mean() / (1 - y.mean()))
    pen = np.full(Z.shape[1], l2)
    pen[0] = 0.0
    for _ in range(iterations):
        p = _sigmoid(Z @ w)
        grad = Z.T @ (p - y) + pen * w
        hess = (Z * (p * (1 - p))[:, None]).T @ Z + np.diag(pen + 1e-9)
        try:
            step = np.linalg.solve(hess, grad)
        except np.linalg.LinAlgError:
            raise FitError("fit: the system is singular (too few distinct runs)") from None
        w -= step
        if float(np.max(np.abs(step))) < tolerance:
            break
    return Logistic(coef=w[1:], intercept=float(w[0]), mean=mean, scale=scale, l2=l2)


def log_loss(y: np.ndarray, p: np.ndarray, floor: float) -> float:
    q = np.clip(p, floor, 1 - floor)
    return float(-np.mean(y * np.log(q) + (1 - y) * np.log(1 - q)))


def brier(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean((p - y) ** 2))


def choose_l2(X: np.ndarray, y: np.ndarray, grid: Sequence[float], folds: int, iterations: int, tolerance: float,
              floor: float, rng: np.random.Generator) -> float:
    """The ridge strength with the lowest cross-validated log loss (folds that see one outcome are skipped)."""
    order = rng.permutation(len(y))
    parts = np.array_split(order, min(folds, len(y)))
    best, best_loss = float(grid[0]), np.inf
    for l2 in grid:
        losses = []
        for part in parts:
            train = np.setdiff1d(order, part)
            if y[train].min() == y[train].max():
                continue
            m = fit_logistic(X[train], y[train], l2, iterations, tolerance)
            losses.append(log_loss(y[part], m.predict(X[part]), floor) * len(part))
        if losses and sum(losses) < best_loss:
            best, best_loss = float(l2), float(sum(losses))
    return best


def case_rate_baseline(cases_train: Sequence[str], y_train: np.ndarray, cases_test: Sequence[str]) -> np.ndarray:
    """The current rules as a predictor: they know only the case, so each case's training pass rate
    (smoothed towards the overall rate by one pseudo-run of each outcome)."""
    overall = float(y_train.mean())
    rates = {}
    for c in set(cases_train):
        mask = np.array([x == c for x in cases_train])
        rates[c] = (float(y_train[mask].sum()) + 2 * overall) / (float(mask.sum()) + 2)
    return np.array([rates.get(c, overall) for c in cases_test])
