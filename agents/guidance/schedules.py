"""Guidance schedules over the normalised noise level.

t_norm is 1.0 at the model's highest noise level and 0.0 at the lowest (ComfyUI's "percent"
turned around), so a schedule means the same thing whatever the step count, the sampler (heun and
dpm_2 evaluate between steps) or a denoise < 1 that cuts the schedule short.

A schedule returns a multiplier for the base scale, or None for "no guidance here" (exactly 1.0,
which lets ComfyUI skip the unconditional pass).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import GuidanceInputError

SCHEDULE_NAMES: tuple[str, ...] = (
    "s_curve",
    "constant",
    "linear_up",
    "linear_down",
    "cosine_up",
    "cosine_down",
    "interval",
)


def s_curve_weight(t_norm: float) -> float:
    """The seed's TimestepScaler: 0.3 at low noise, 1.4 at high noise, 0.85 in the middle."""
    return 0.3 + 1.1 / (1.0 + math.exp(-12.0 * (t_norm - 0.5)))


def _progress(t_norm: float) -> float:
    # 0 at the start of sampling (high noise), 1 at the end
    return 1.0 - t_norm


@dataclass(frozen=True)
class Schedule:
    """A named multiplier curve. `up`/`down` say how guidance moves as sampling proceeds.

    The ramps run 0..2 so their mean over the noise axis is 1 (the base scale on average),
    which makes them comparable with constant guidance at the same base (Wang et al. 2024).
    """

    name: str
    sigma_lo: float = 0.0
    sigma_hi: float = math.inf

    def weight(self, t_norm: float, sigma: float) -> float | None:
        if not math.isfinite(t_norm):
            raise GuidanceInputError(f"t_norm: must be a finite number, got {t_norm}")
        t = min(max(t_norm, 0.0), 1.0)
        p = _progress(t)
        if self.name == "s_curve":
            return s_curve_weight(t)
        if self.name == "constant":
            return 1.0
        if self.name == "linear_up":
            return 2.0 * p
        if self.name == "linear_down":
            return 2.0 * (1.0 - p)
        if self.name == "cosine_up":
            return 1.0 - math.cos(math.pi * p)
        if self.name == "cosine_down":
            return 1.0 + math.cos(math.pi * p)
        if self.name == "interval":
            # Kynkaanniemi et al. 2024: guide only inside (sigma_lo, sigma_hi]
            return 1.0 if self.sigma_lo < sigma <= self.sigma_hi else None
        raise GuidanceInputError(f"schedule: unknown name {self.name!r}")


def make_schedule(name: str, sigma_lo: float = 0.0, sigma_hi: float = math.inf) -> Schedule:
    """Build a schedule by name, with a clear error for unknown names or a bad interval."""
    if name not in SCHEDULE_NAMES:
        raise GuidanceInputError(f"schedule: unknown schedule {name!r}; choose one of {', '.join(SCHEDULE_NAMES)}")
    if name == "interval":
        if not (math.isfinite(sigma_lo) and sigma_lo >= 0.0):
            raise GuidanceInputError(f"interval_sigma_lo: must be a finite number >= 0, got {sigma_lo}")
        if math.isnan(sigma_hi) or sigma_hi <= sigma_lo:
            raise GuidanceInputError(
                f"interval_sigma_hi: must be greater than interval_sigma_lo ({sigma_lo}), got {sigma_hi}"
            )
    return Schedule(name=name, sigma_lo=float(sigma_lo), sigma_hi=float(sigma_hi))
