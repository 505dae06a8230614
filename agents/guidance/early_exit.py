"""Early exit: stop when the denoised estimate stops changing.

Rule: after `min_fraction` of the run (by noise level, not step count), if the relative change
||D_i - D_{i-1}|| / ||D_{i-1}|| stays under `tolerance` for `patience` consecutive model calls
at distinct noise levels, the run has converged: what is left would only polish noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .errors import GuidanceInputError


@dataclass(frozen=True)
class EarlyExitSettings:
    tolerance: float = 0.02
    patience: int = 2
    min_fraction: float = 0.5

    def __post_init__(self) -> None:
        if not (math.isfinite(self.tolerance) and self.tolerance > 0.0):
            raise GuidanceInputError(f"early_stop_tolerance: must be a positive number, got {self.tolerance}")
        if not isinstance(self.patience, int) or self.patience < 1:
            raise GuidanceInputError(f"early_stop_patience: must be an integer >= 1, got {self.patience}")
        if not (0.0 <= self.min_fraction <= 1.0):
            raise GuidanceInputError(f"early_stop_min_fraction: must be in [0, 1], got {self.min_fraction}")


class EarlyExit:
    """Feed it each denoised estimate with the run's progress (0..1); it says when to stop."""

    def __init__(self, settings: EarlyExitSettings):
        self.settings = settings
        self._last: torch.Tensor | None = None
        self._last_sigma: float | None = None
        self._calm = 0
        self.last_change: float | None = None

    def update(self, denoised: torch.Tensor, sigma: float, progress: float) -> bool:
        if self._last_sigma is not None and math.isclose(sigma, self._last_sigma, rel_tol=1e-6):
            # a second evaluation at the same noise level (heun's corrector): same point, newer value
            self._last = denoised.detach().float().clone()
            return False
        d = denoised.detach().float()
        if self._last is not None and self._last.shape == d.shape:
            ref = float(self._last.norm())
            self.last_change = float((d - self._last).norm()) / max(ref, 1e-12)
            if progress >= self.settings.min_fraction and self.last_change < self.settings.tolerance:
                self._calm += 1
            else:
                self._calm = 0
        self._last = d.clone()
        self._last_sigma = sigma
        return self._calm >= self.settings.patience
