"""The per-run guidance controller: effective CFG for each model call, and the record of it.

Effective CFG = base x schedule weight(noise level) x (1 + quality adjustment), clamped to
[cfg_min, cfg_max]. A scale within `skip_epsilon` of 1.0 or under `skip_below` becomes exactly
1.0 so the host sampler can drop the unconditional pass. A schedule that says "no guidance here"
(the interval's outside, or Adaptive Guidance after cond/uncond agree) also gives exactly 1.0.

One controller serves one sampling run; callers key it by noise level (sigma and t_norm), never by
a step counter, so in-between evaluations (heun, dpm_2) and shortened schedules are handled.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from .data import guidance_data, tunable
from .early_exit import EarlyExit, EarlyExitSettings
from .errors import GuidanceInputError
from .quality import HeuristicQualityPredictor, QualityPredictor, measure
from .schedules import Schedule, make_schedule

_D = guidance_data().defaults()


@dataclass(frozen=True)
class GuidanceSettings:
    """Defaults are the node options' defaults in guidance.toml (chosen on the exact-score benchmark,
    web/docs/M4AdaptiveCFG.md). Early exit is a separate object: None here (a bare controller never
    stops early); `from_options` builds it as the nodes do (on by default)."""

    schedule: str = _D["schedule"]
    cfg_min: float = _D["cfg_min"]
    cfg_max: float = _D["cfg_max"]
    skip_below: float = _D["skip_below"]
    skip_epsilon: float = tunable("skip_epsilon")
    quality_adjust: bool = _D["quality_adjust"]
    agreement_cutoff: float = _D["agreement_cutoff"]  # > 0: Adaptive Guidance, CFG off once cos(eps_c, eps_u) >= this
    interval_sigma_lo: float = _D["interval_sigma_lo"]
    interval_sigma_hi: float = _D["interval_sigma_hi"]
    gap_cutoff: float = _D["gap_cutoff"]  # > 0: guidance only inside the guidance gap's window (_gap_latch)
    gap_peak_fraction: float = tunable("gap_peak_fraction")  # an unarmed gap: off under this share of its peak
    gap_wait_margin: float = tunable("gap_wait_margin")  # before arming: no guidance above margin x predicted sigma
    gap_close_calls: int = int(tunable("gap_close_calls"))  # armed: off after this many calls under the cutoff
    gap_wait_lookahead: int = int(tunable("gap_wait_lookahead"))  # 1: the wait ends at the step that crosses its level
    gap_effect_floor: float = tunable("gap_effect_floor")  # armed: off once guidance moves no item's estimate more
    gap_measure: str = _D["gap_measure"]  # what the gap is relative to: "residual" (x - D_cond) or "estimate" (D_cond)
    base_override: float | None = None  # e.g. the prompt analyser's base instead of the sampler's cfg
    early_exit: EarlyExitSettings | None = None
    frames_in_batch: bool = False  # treat the batch as the frames of one clip (temporal signals)
    cap_at_base: bool = False  # never above the base: the schedule may only lower guidance (M4 policy caps hold)

    def __post_init__(self) -> None:
        for name in ("cfg_min", "cfg_max", "skip_below", "skip_epsilon"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise GuidanceInputError(f"{name}: must be a finite number >= 0, got {v!r}")
        if self.cfg_min > self.cfg_max:
            raise GuidanceInputError(
                f"cfg_min/cfg_max: bounds are inverted (cfg_min {self.cfg_min} > cfg_max {self.cfg_max})"
            )
        guidance_data().options["gap_cutoff"].check(self.gap_cutoff)  # names gap_cutoff and its range
        guidance_data().options["gap_measure"].check(self.gap_measure)
        if not (0.0 <= self.gap_peak_fraction <= 1.0):
            raise GuidanceInputError(f"gap_peak_fraction: must be in [0, 1] (0 = off), got {self.gap_peak_fraction}")
        if isinstance(self.gap_close_calls, bool) or not isinstance(self.gap_close_calls, int) \
                or self.gap_close_calls < 1:
            raise GuidanceInputError(f"gap_close_calls: must be an integer >= 1, got {self.gap_close_calls!r}")
        if not (0.0 <= self.gap_effect_floor <= 1.0):
            raise GuidanceInputError(f"gap_effect_floor: must be in [0, 1] (0 = off), got {self.gap_effect_floor}")
        if isinstance(self.gap_wait_lookahead, bool) or self.gap_wait_lookahead not in (0, 1):
            raise GuidanceInputError(f"gap_wait_lookahead: must be 0 or 1, got {self.gap_wait_lookahead!r}")
        if not self.gap_wait_margin >= 1.0:  # math.inf: never wait (NaN fails here too)
            raise GuidanceInputError(f"gap_wait_margin: must be a number >= 1, got {self.gap_wait_margin}")
        if not (0.0 <= self.agreement_cutoff <= 1.0):
            raise GuidanceInputError(f"agreement_cutoff: must be in [0, 1] (0 = off), got {self.agreement_cutoff}")
        if self.base_override is not None and not (math.isfinite(self.base_override) and self.base_override >= 0):
            raise GuidanceInputError(f"base cfg: must be a finite number >= 0, got {self.base_override}")
        self.make_schedule()  # validates the name and the interval

    def make_schedule(self) -> Schedule:
        return make_schedule(self.schedule, self.interval_sigma_lo, self.interval_sigma_hi)

    @classmethod
    def from_options(cls, options: dict[str, Any], base_override: float | None = None) -> GuidanceSettings:
        """Settings from checked node options (agents.guidance.data.parse_options), the one path every
        guidance node takes."""
        o = options
        # the residual rule reads one call, so it has its own patience (tunables.early_stop_residual_patience)
        patience = int(tunable("early_stop_residual_patience" if o["early_stop_rule"] == "residual"
                               else "early_stop_patience"))
        early = EarlyExitSettings(tolerance=o["early_stop_tolerance"], rule=o["early_stop_rule"],
                                  estimate=o["early_stop_estimate"], patience=patience) if o["early_stop"] else None
        return cls(schedule=o["schedule"], cfg_min=o["cfg_min"], cfg_max=o["cfg_max"], skip_below=o["skip_below"],
                   quality_adjust=o["quality_adjust"], agreement_cutoff=o["agreement_cutoff"],
                   interval_sigma_lo=o["interval_sigma_lo"], interval_sigma_hi=o["interval_sigma_hi"],
                   gap_cutoff=o["gap_cutoff"], gap_measure=o["gap_measure"], base_override=base_override,
                   early_exit=early, cap_at_base=bool(o["cap_at_base"]))


@dataclass
class ScheduleEntry:
    index: int  # model call number in this run
    sigma: float
    t_norm: float
    cfg: float  # the scale actually used
    uncond: bool  # whether the unconditional pass ran
    weight: float | None  # schedule multiplier (None = guidance off)
    adjustment: float  # quality adjustment applied
    skipped: bool = False  # early exit: no model call, the frozen estimate was returned


@dataclass
class CallPlan:
    cfg: float
    uncond: bool
    frozen: torch.Tensor | None = None  # set once the run has exited early
    entry: ScheduleEntry | None = field(default=None, repr=False)


class GuidanceController:
    def __init__(
        self,
        settings: GuidanceSettings,
        quality: QualityPredictor | None = None,
        on_entry: Callable[[ScheduleEntry], None] | None = None,
    ):
        self.settings = settings
        self.schedule = settings.make_schedule()
        self.quality: QualityPredictor = quality or HeuristicQualityPredictor()
        self.early = EarlyExit(settings.early_exit) if settings.early_exit else None
        self.on_entry = on_entry
        self.entries: list[ScheduleEntry] = []
        self._adjustment = 0.0
        self._guidance_off = False  # Adaptive Guidance / guidance-gap latch
        self._gap_armed = False  # the guidance gap has reached gap_cutoff once
        self._gap_peak = 0.0  # the largest guidance gap of the run so far
        self._gap_under = 0  # consecutive armed calls under the cutoff
        self._wait_above: float | None = None  # no guidance above this sigma until the gap arms
        self._gap_off_reason: str | None = None  # why the window closed (the summary's gap_note)
        self.last_gap: float | None = None
        self.stopped_at_sigma: float | None = None
        self._frozen: torch.Tensor | None = None

    def effective_cfg(self, base: float, t_norm: float, sigma: float,
                      next_sigma: float | None = None) -> tuple[float, float | None]:
        """The scale for one call and the schedule weight behind it (None = guidance off). next_sigma: the
        run's next scheduled noise level below this call's (None: unknown), where this call's step ends."""
        s = self.settings
        if not math.isfinite(base) or base < 0:
            raise GuidanceInputError(f"cfg: the base scale must be a finite number >= 0, got {base}")
        if not math.isfinite(sigma) or sigma < 0:
            raise GuidanceInputError(f"sigma: must be a finite number >= 0, got {sigma}")
        base = s.base_override if s.base_override is not None else base
        # With the lookahead the wait holds only while the whole step stays above its level: a short run's
        # step may jump from above the level to below the noise levels where the class is decided.
        reach = next_sigma if s.gap_wait_lookahead and next_sigma is not None else sigma
        waiting = self._wait_above is not None and not self._gap_armed and reach > self._wait_above
        weight = None if self._guidance_off or waiting else self.schedule.weight(t_norm, sigma)
        if weight is None or abs(base - 1.0) <= s.skip_epsilon:
            return 1.0, weight
        adj = self._adjustment if s.quality_adjust else 0.0
        raw = base * weight * (1.0 + adj)
        upper = min(s.cfg_max, base) if s.cap_at_base else s.cfg_max
        scale = min(max(raw, s.cfg_min), upper)
        if abs(scale - 1.0) <= s.skip_epsilon or scale < s.skip_below:
            return 1.0, weight
        return scale, weight

    def begin(self, base: float, sigma: float, t_norm: float, *, forced_uncond: bool = False,
              next_sigma: float | None = None) -> CallPlan:
        """Plan one model call. forced_uncond: the host runs the uncond pass anyway (another node needs
        it), so the record says it ran whatever the scale. next_sigma: see effective_cfg."""
        if self._frozen is not None:
            entry = ScheduleEntry(len(self.entries), sigma, t_norm, 1.0, False, None, 0.0, skipped=True)
            self._record(entry)
            return CallPlan(cfg=1.0, uncond=False, frozen=self._frozen, entry=entry)
        cfg, weight = self.effective_cfg(base, t_norm, sigma, next_sigma)
        uncond = forced_uncond or not math.isclose(cfg, 1.0)
        adj = self._adjustment if self.settings.quality_adjust and weight is not None else 0.0
        entry = ScheduleEntry(len(self.entries), float(sigma), float(t_norm), float(cfg), uncond, weight, adj)
        self._record(entry)
        return CallPlan(cfg=cfg, uncond=uncond, entry=entry)

    def end(
        self,
        x: torch.Tensor,
        denoised: torch.Tensor,
        cond_denoised: torch.Tensor | None,
        uncond_denoised: torch.Tensor | None,
        sigma: float,
        t_norm: float,
        progress: float,
    ) -> None:
        """Feed back the call's result: quality adjustment, Adaptive Guidance latch, early exit."""
        if not torch.isfinite(denoised).all():
            raise GuidanceInputError(f"denoised: the model returned NaN/inf at sigma {sigma:.4g}")
        signals = measure(x, denoised, cond_denoised, uncond_denoised, self.settings.frames_in_batch)
        if self.settings.quality_adjust:
            self._adjustment = float(self.quality.adjustment(signals, t_norm))
        cut = self.settings.agreement_cutoff
        if cut > 0 and signals.agreement is not None and signals.agreement >= cut:
            self._guidance_off = True
        if self.settings.gap_cutoff > 0 and cond_denoised is not None and uncond_denoised is not None:
            self._gap_latch(guidance_gap(x, cond_denoised, uncond_denoised, self.settings.gap_measure), float(sigma))
            self._effect_latch(cond_denoised, uncond_denoised, float(sigma))
        guided = bool(self.entries) and not math.isclose(self.entries[-1].cfg, 1.0)
        if self.early is not None and self.early.update(denoised, sigma, progress, x, guided=guided):
            self._frozen = final_estimate(x, denoised, float(sigma), self.early.settings.estimate)
            self.stopped_at_sigma = float(sigma)

    def _gap_latch(self, gap: float, sigma: float) -> None:
        """The guidance gap's window: guidance runs where the gap says the class is being decided.
        - Before: at high noise the gap grows as 1/sigma (both estimates sit near the data mean), so the
          first call's gap predicts the noise level where it reaches the cutoff; above `gap_wait_margin`
          times that level the run goes unguided (no unconditional pass) until the gap arms.
        - Armed once the gap reaches the cutoff; once armed, `gap_close_calls` consecutive calls under the
          cutoff turn guidance off for the rest of the run (more than one: a batch mean that dips under it
          while a few items are still being decided does not end their guidance).
        - A gap that peaks under the cutoff (many dimensions and overlapping classes: the decision is spread
          thin) turns guidance off once it has fallen under `gap_peak_fraction` of its peak: its decisive
          noise levels are past and it only shrinks (before, guidance ran to the end for nothing)."""
        if self.last_gap is None and 0 < gap < self.settings.gap_cutoff:
            self._wait_above = self.settings.gap_wait_margin * sigma * gap / self.settings.gap_cutoff
        self.last_gap = gap
        self._gap_peak = max(self._gap_peak, gap)
        if gap >= self.settings.gap_cutoff:
            self._gap_armed = True
            self._gap_under = 0
            return
        if self._gap_armed:
            self._gap_under += 1
            closing = self._gap_under >= self.settings.gap_close_calls
        else:
            closing = gap < self.settings.gap_peak_fraction * self._gap_peak
        if closing:
            if not self._guidance_off:
                k = self._gap_under
                self._gap_off_reason = ((f"the gap fell under the cutoff at sigma {sigma:.3g}" if k == 1 else
                                         f"the gap stayed under the cutoff for {k} calls, to sigma {sigma:.3g}")
                                        if self._gap_armed else
                                        f"the gap peaked at {self._gap_peak:.3g} under the cutoff and fell under "
                                        f"{self.settings.gap_peak_fraction:g} of it at sigma {sigma:.3g}")
            self._guidance_off = True

    def _effect_latch(self, cond: torch.Tensor, uncond: torch.Tensor, sigma: float) -> None:
        """Once the window is open, guidance ends when this call's guidance moved no batch item's estimate by
        more than `gap_effect_floor` of its size: (scale - 1) ||D_c - D_u|| / ||D_c||. At low noise on overlapping
        classes the gap over the residual stays high (both shrink together), so the window alone guides to the
        end, where the uncond pass no longer changes the result (a short run's last calls)."""
        floor = self.settings.gap_effect_floor
        if floor <= 0 or not self._gap_armed or self._guidance_off or not self.entries:
            return
        scale = self.entries[-1].cfg
        c = cond.detach().float().flatten(1)
        moved = (scale - 1.0) * (c - uncond.detach().float().flatten(1)).norm(dim=1) / c.norm(dim=1).clamp_min(1e-12)
        effect = float(moved.abs().max())
        if effect < floor:
            self._gap_off_reason = (f"guidance moved every estimate by under {floor:g} of its size "
                                    f"({effect:.3g}) at sigma {sigma:.3g}")
            self._guidance_off = True

    def _record(self, entry: ScheduleEntry) -> None:
        self.entries.append(entry)
        if self.on_entry is not None:
            self.on_entry(entry)

    def summary(self) -> dict:
        """JSON-able record of the run: per call sigma, cfg, uncond; counts; where it stopped."""
        calls = [e for e in self.entries if not e.skipped]
        return {
            "schedule": self.settings.schedule,
            "settings": _settings_dict(self.settings),
            "calls": [_entry_dict(e) for e in self.entries],
            "model_calls": len(calls),
            "uncond_calls": sum(1 for e in calls if e.uncond),
            "skipped_calls": len(self.entries) - len(calls),
            "stopped_at_sigma": self.stopped_at_sigma,
            "gap_note": self.gap_note(),
        }

    def gap_note(self) -> str:
        """What the guidance gap's window did in this run, in words (the schedule output's gap_note)."""
        if self.settings.gap_cutoff <= 0:
            return "guidance gap off"
        guided = [e.sigma for e in self.entries if not e.skipped and e.uncond]
        wait = self._wait_above
        waited = 0 if wait is None else sum(1 for e in self.entries[1:]
                                            if not e.skipped and not e.uncond and e.sigma > wait)
        parts = [f"unguided above sigma {wait:.3g} ({waited} call{'' if waited == 1 else 's'})"] if waited else []
        parts.append(f"guided from sigma {guided[0]:.3g} to {guided[-1]:.3g}" if guided else "never guided")
        parts.append(f"then off: {self._gap_off_reason}" if self._gap_off_reason else
                     "guided to the end: the gap never fell under the cutoff")
        return "; ".join(parts)


def guidance_gap(x: torch.Tensor, cond: torch.Tensor, uncond: torch.Tensor, measure: str = "residual") -> float:
    """||D_cond - D_uncond|| over a reference, one number per call (ComfyUI's cfg is one scale for the batch).

    "residual" (batch mean): over ||x - D_cond||, how much guidance moves this step relative to the step
    itself (near 0 at very high noise, where both estimates are the data mean, and again once the sample
    sits where cond and uncond agree; for overlapping classes both terms shrink together as sigma -> 0,
    so it may never fall).
    "estimate" (batch max): over ||D_cond||, how much guidance changes the estimate of the result (largest
    at high noise, where the estimates are the class and data means; falls once the sample has committed,
    and as sigma -> 0 in every case, since both estimates tend to x). The batch's largest: one item still
    being decided keeps guidance on for all."""
    c = cond.detach().float().flatten(1)
    gap = (c - uncond.detach().float().flatten(1)).norm(dim=1)
    if measure == "estimate":
        return float((gap / c.norm(dim=1).clamp_min(1e-12)).max())
    return float((gap / (x.detach().float().flatten(1) - c).norm(dim=1).clamp_min(1e-12)).mean())


def final_estimate(x: torch.Tensor, denoised: torch.Tensor, sigma: float, kind: str) -> torch.Tensor:
    """What the run returns after an early stop (every later call gets it; every sampler ends on it).

    "denoised": the posterior mean D at the stop's noise level sigma, whose spread is too small by the
    posterior variance. The others return D + c (x - D): for data of local variance v the spread-consistent
    c is sqrt(u (u + 1)) - u with u = v / sigma^2, which tends to 1/2 as sigma -> 0.
    "half step": c = 1/2, the point an Euler step from x reaches at half the noise level.
    "spread matched": c per batch item from u estimated by the residual itself: for a Gaussian,
    E ||x - D||^2 = n sigma^2 * sigma^2 / (v + sigma^2) (n values), so r = ||x - D||^2 / (n sigma^2)
    estimates sigma^2 / (v + sigma^2) and u = (1 - r) / r. No constant: c -> 1/2 where the stop is at low
    noise, c -> 0 (the plain D) where the residual is as large as the noise itself."""
    d = denoised.detach()
    if kind == "denoised":
        return d.clone()
    resid = x.detach().to(d.dtype) - d
    if kind == "half step":
        return d + 0.5 * resid
    flat = resid.flatten(1).double()
    r = (flat.square().mean(dim=1) / max(sigma, 1e-12) ** 2).clamp(1e-12, 1.0)
    u = (1.0 - r) / r
    c = (torch.sqrt(u * (u + 1.0)) - u).to(d.dtype).reshape(-1, *([1] * (d.ndim - 1)))
    return d + c * resid


def _entry_dict(e: ScheduleEntry) -> dict:
    d = asdict(e)
    return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in d.items()}


def _settings_dict(s: GuidanceSettings) -> dict:
    d = asdict(s)
    for k, v in list(d.items()):
        if isinstance(v, float) and not math.isfinite(v):
            d[k] = None  # JSON has no infinity
    return d
