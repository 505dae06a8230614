"""Significance for the guidance benchmark: a one-sided precision test and paired SWD bootstrap intervals.

Precision: one-sided two-proportion z-test at level ALPHA. "Significantly lower" means the pooled z of
(p_method - p_static) is below -z_(1-ALPHA).
SWD (sliced Wasserstein-2 to fresh true samples, fixed projections): each method's samples are
resampled independently (BOOTSTRAP draws), and "significantly higher/lower" means the one-sided
(1 - ALPHA) bound of the bootstrap difference excludes 0. Not paired, on purpose: every method samples
from the same initial noise, so a paired bootstrap calls differences of 0.0001 significant (two
methods whose outputs nearly coincide); the question here is whether the distance to the true
distribution differs beyond what `samples` draws can resolve (about 0.01-0.02 at 256 per class).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import torch

ALPHA = 0.05
BOOTSTRAP = 200
PROJECTIONS = 128


@lru_cache(maxsize=8)  # a handful of levels, asked once per verdict
def z_quantile(p: float) -> float:
    """Inverse standard normal CDF (bisection on erf: no scipy needed here)."""
    lo, hi = -10.0, 10.0
    for _ in range(80):
        mid = (lo + hi) / 2
        if 0.5 * (1 + math.erf(mid / math.sqrt(2))) < p:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def precision_lower(p_method: float, p_ref: float, n: int, alpha: float = ALPHA) -> bool:
    """One-sided test: is the method's precision significantly below the reference's (n samples each)?"""
    pooled = (p_method + p_ref) / 2
    se = math.sqrt(max(2 * pooled * (1 - pooled) / n, 1e-12))
    if pooled in (0.0, 1.0):
        return p_method < p_ref
    return (p_method - p_ref) / se < -z_quantile(1 - alpha)


def projections(dim: int, seed: int = 7) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    d = torch.randn(dim, PROJECTIONS, generator=gen, dtype=torch.float64)
    return d / d.norm(dim=0, keepdim=True)


@dataclass
class SwdSample:
    """One class's SWD and its bootstrap replicates (same index draws for every method of a config)."""

    value: float
    boot: torch.Tensor  # [BOOTSTRAP]


def swd_with_bootstrap(x: torch.Tensor, ref: torch.Tensor, proj: torch.Tensor, seed: int) -> SwdSample:
    px = (x.double() @ proj).float()
    pr, _ = torch.sort((ref.double() @ proj).float(), dim=0)
    sx, _ = torch.sort(px, dim=0)
    value = float(((sx - pr) ** 2).mean().sqrt())
    gen = torch.Generator().manual_seed(seed)
    idx = torch.randint(px.shape[0], (BOOTSTRAP, px.shape[0]), generator=gen)
    b, _ = torch.sort(px[idx], dim=1)
    boot = ((b - pr.unsqueeze(0)) ** 2).mean(dim=(1, 2)).sqrt()
    return SwdSample(value, boot)


def mean_swd(per_class: list[SwdSample]) -> tuple[float, torch.Tensor]:
    return (sum(s.value for s in per_class) / len(per_class),
            torch.stack([s.boot for s in per_class]).mean(dim=0))


def swd_bounds(boot_a: torch.Tensor, boot_b: torch.Tensor, alpha: float = ALPHA) -> tuple[float, float]:
    """One-sided (1 - alpha) bounds of SWD(a) - SWD(b): (lower, upper)."""
    diff = boot_a - boot_b
    return float(torch.quantile(diff, alpha)), float(torch.quantile(diff, 1 - alpha))
