"""Early exit: stop the sampling loop once what is left would no longer change the result.

Two rules (EarlyExitSettings.rule), both only after `min_fraction` of the run (by noise level, not
step count) and only after `patience` consecutive model calls at distinct noise levels pass:

- "denoised change" (the original rule): the relative change ||D_i - D_{i-1}|| / ||D_{i-1}|| of the
  denoised estimate over the whole batch stays under `tolerance`. The noise that SDE and ancestral
  samplers inject keeps moving D, so there it seldom fires.
- "residual": for EVERY batch item, ||x_i - D_i|| / ||D_i|| < `tolerance`: the current point is already
  within `tolerance` of its own denoised estimate at this noise level, so finishing the run can only
  move the result by about that much, whatever noise the sampler injects on the way (the test reads
  one call, not the difference of two). An item still far from its estimate keeps the whole batch
  running: one converged item never freezes the others. With `unguided_only`, a call run with guidance
  never counts as calm: its estimate holds the full extrapolation w (D_c - D_u) of its noise level, which
  the later, quieter calls would have shrunk. With `history` > 0, each item's estimate must also have moved
  by under `history` times its size since the last call: multistep samplers (dpmpp_2m, dpmpp_3m_sde, uni_pc,
  lms) extrapolate the trend of past estimates, so their remaining steps can move a point that already
  sits on its own estimate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from .data import EARLY_STOP_RULES, guidance_data, tunable
from .errors import GuidanceInputError


@dataclass(frozen=True)
class EarlyExitSettings:
    tolerance: float = field(default_factory=lambda: guidance_data().options["early_stop_tolerance"].default)
    patience: int = field(default_factory=lambda: int(tunable("early_stop_patience")))
    min_fraction: float = field(default_factory=lambda: tunable("early_stop_min_fraction"))
    rule: str = field(default_factory=lambda: guidance_data().options["early_stop_rule"].default)
    estimate: str = field(default_factory=lambda: guidance_data().options["early_stop_estimate"].default)
    unguided_only: int = field(default_factory=lambda: int(tunable("early_stop_residual_unguided")))  # residual rule
    history: float = field(default_factory=lambda: tunable("early_stop_residual_history"))  # residual rule; 0: off

    def __post_init__(self) -> None:
        if not (math.isfinite(self.tolerance) and self.tolerance > 0.0):
            raise GuidanceInputError(f"early_stop_tolerance: must be a positive number, got {self.tolerance}")
        if not isinstance(self.patience, int) or self.patience < 1:
            raise GuidanceInputError(f"early_stop_patience: must be an integer >= 1, got {self.patience}")
        if not (0.0 <= self.min_fraction <= 1.0):
            raise GuidanceInputError(f"early_stop_min_fraction: must be in [0, 1], got {self.min_fraction}")
        if isinstance(self.unguided_only, bool) or self.unguided_only not in (0, 1):
            raise GuidanceInputError(f"early_stop_residual_unguided: must be 0 or 1, got {self.unguided_only!r}")
        if isinstance(self.history, bool) or not isinstance(self.history, (int, float)) \
                or not 0.0 <= self.history <= 10.0:
            raise GuidanceInputError(f"early_stop_residual_history: must be a number in [0, 10] (0 = off), "
                                     f"got {self.history!r}")
        guidance_data().options["early_stop_estimate"].check(self.estimate)  # names the option and its choices
        if self.rule not in EARLY_STOP_RULES:
            raise GuidanceInputError(f"early_stop_rule: unknown rule {self.rule!r}; choose one of "
                                     f"{', '.join(EARLY_STOP_RULES)}")


def residual_ratio(x: torch.Tensor, denoised: torch.Tensor) -> torch.Tensor:
    """Per batch item ||x - D|| / ||D|| (any latent shape [B, ...])."""
    d = denoised.detach().float().flatten(1)
    r = (x.detach().float().flatten(1) - d).norm(dim=1)
    return r / d.norm(dim=1).clamp_min(1e-12)


def _item_change(d: torch.Tensor, last: torch.Tensor | None) -> torch.Tensor:
    """Per batch item ||D - D_last|| / ||D_last||; inf where there is no comparable last estimate."""
    if last is None or last.shape != d.shape:
        return torch.full((d.shape[0],), math.inf)
    prev = last.flatten(1)
    return (d.flatten(1) - prev).norm(dim=1) / prev.norm(dim=1).clamp_min(1e-12)


class EarlyExit:
    """Feed it each denoised estimate with the run's progress (0..1); it says when to stop."""

    def __init__(self, settings: EarlyExitSettings):
        self.settings = settings
        self._last: torch.Tensor | None = None
        self._last_sigma: float | None = None
        self._calm = 0
        self.last_change: float | None = None

    def update(self, denoised: torch.Tensor, sigma: float, progress: float, x: torch.Tensor | None = None,
               guided: bool = False) -> bool:
        """guided: this call's estimate was guided (scale != 1); see `unguided_only`."""
        if self._last_sigma is not None and math.isclose(sigma, self._last_sigma, rel_tol=1e-6):
            # a second evaluation at the same noise level (heun's corrector): same point, newer value
            if self.settings.rule == "denoised change" or self.settings.history:
                self._last = denoised.detach().float().clone()
            return False
        if self.settings.rule == "residual":
            if x is None:
                raise GuidanceInputError("early_stop_rule: 'residual' needs the sampler's current latent")
            ratio = residual_ratio(x, denoised)
            if self.settings.history:
                d = denoised.detach().float()
                # scaled so that one bound, `tolerance`, decides both conditions
                ratio = torch.maximum(ratio, _item_change(d, self._last) * (self.settings.tolerance
                                                                           / self.settings.history))
                self._last = d.clone()
            self.last_change = float(ratio.max())
            self._count(progress, held=guided and bool(self.settings.unguided_only))
            self._last_sigma = sigma
            return self._calm >= self.settings.patience
        d = denoised.detach().float()
        if self._last is not None and self._last.shape == d.shape:
            ref = float(self._last.norm())
            self.last_change = float((d - self._last).norm()) / max(ref, 1e-12)
            self._count(progress)
        self._last = d.clone()
        self._last_sigma = sigma
        return self._calm >= self.settings.patience

    def _count(self, progress: float, held: bool = False) -> None:
        change = math.inf if self.last_change is None else self.last_change
        if not held and progress >= self.settings.min_fraction and change < self.settings.tolerance:
            self._calm += 1
        else:
            self._calm = 0
