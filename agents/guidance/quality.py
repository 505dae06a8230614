"""Quality signals from the sampler's own tensors -> a guidance adjustment in [-0.3, +0.2].

The seed wants a trained ~2M-parameter predictor fed with CLIP scores of decoded frames. No
trajectories labelled with quality exist in this project, so this is a documented heuristic
behind the QualityPredictor protocol (a trained model replaces `adjustment`):

- cond/uncond agreement: the cosine between the conditional and unconditional noise
  predictions. While they disagree the prompt is still being laid down (nudge guidance up, at
  most +0.2); once they agree, guidance only amplifies small differences into saturation
  (nudge down, at most -0.3). Castillo et al. use the same signal to switch CFG off.
- spikes in the denoised estimate's spread (std jumping above its running average) and, for
  video, in frame-to-frame change: the seed's "sudden variance spikes" sign of hallucination or
  flicker. A spike nudges guidance down.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch

from .data import tunable
from .errors import GuidanceInputError

ADJ_MIN = tunable("quality_adj_min")
ADJ_MAX = tunable("quality_adj_max")


@dataclass(frozen=True)
class QualitySignals:
    agreement: float | None  # mean cosine(eps_cond, eps_uncond); None when uncond did not run
    spread: float  # std of the denoised estimate
    temporal_change: float | None  # mean relative frame-to-frame change; None for single images


@runtime_checkable
class QualityPredictor(Protocol):
    """Where a trained quality model plugs in. One instance per sampling run."""

    def adjustment(self, signals: QualitySignals, t_norm: float) -> float: ...


def frames_view(denoised: torch.Tensor, frames_in_batch: bool) -> torch.Tensor | None:
    """[B,C,T,H,W] or (batched frames) [T,C,H,W] -> [clips, T, features]; None when there is no time axis."""
    if denoised.ndim == 5:
        b, c, t, h, w = denoised.shape
        return denoised.permute(0, 2, 1, 3, 4).reshape(b, t, c * h * w) if t > 1 else None
    if frames_in_batch and denoised.ndim == 4 and denoised.shape[0] > 1:
        return denoised.reshape(1, denoised.shape[0], -1)
    return None


def measure(
    x: torch.Tensor,
    denoised: torch.Tensor,
    cond_denoised: torch.Tensor | None,
    uncond_denoised: torch.Tensor | None,
    frames_in_batch: bool = False,
) -> QualitySignals:
    """Compute the signals for one model call (all tensors of x's shape)."""
    if denoised.shape != x.shape:
        raise GuidanceInputError(f"denoised: shape {tuple(denoised.shape)} does not match the latent {tuple(x.shape)}")
    d = denoised.detach().float()
    agreement = None
    if cond_denoised is not None and uncond_denoised is not None:
        xf = x.detach().float()
        eps_c = (xf - cond_denoised.detach().float()).flatten(1)
        eps_u = (xf - uncond_denoised.detach().float()).flatten(1)
        agreement = float(torch.nn.functional.cosine_similarity(eps_c, eps_u, dim=1, eps=1e-12).mean())
    temporal = None
    fv = frames_view(d, frames_in_batch)
    if fv is not None:
        diff = (fv[:, 1:] - fv[:, :-1]).norm(dim=2)
        scale = fv.norm(dim=2).mean(dim=1, keepdim=True).clamp_min(1e-12)
        temporal = float((diff / scale).mean())
    return QualitySignals(agreement=agreement, spread=float(d.std()), temporal_change=temporal)


class HeuristicQualityPredictor:
    """Agreement ramp plus spike penalty; running averages are kept per run (one instance per run)."""

    def __init__(self, agree_lo: float = tunable("quality_agree_lo"), agree_hi: float = tunable("quality_agree_hi"),
                 spike_tol: float = tunable("quality_spike_tol"), ema: float = tunable("quality_ema")):
        if not 0.0 <= agree_lo < agree_hi <= 1.0:
            raise GuidanceInputError(f"agreement bounds: need 0 <= lo < hi <= 1, got lo={agree_lo}, hi={agree_hi}")
        self.agree_lo = agree_lo
        self.agree_hi = agree_hi
        self.spike_tol = spike_tol
        self.ema = ema
        self._spread: float | None = None
        self._temporal: float | None = None
        self._agreement: float | None = None

    def _spike(self, value: float | None, ref: float | None) -> float:
        if value is None or ref is None or ref <= 1e-12:
            return 0.0
        excess = value / ref - 1.0 - self.spike_tol
        return min(max(excess / 0.5, 0.0), 1.0)

    def adjustment(self, signals: QualitySignals, t_norm: float) -> float:
        if signals.agreement is not None:
            self._agreement = signals.agreement
        adj = 0.0
        if self._agreement is not None:
            a = (self._agreement - self.agree_lo) / (self.agree_hi - self.agree_lo)
            a = min(max(a, 0.0), 1.0)
            adj = ADJ_MAX - (ADJ_MAX - ADJ_MIN) * a  # +0.2 when they disagree .. -0.3 when they agree
        spike = max(self._spike(signals.spread, self._spread), self._spike(signals.temporal_change, self._temporal))
        adj -= 0.3 * spike
        self._spread = _ema(self._spread, signals.spread, self.ema)
        if signals.temporal_change is not None:
            self._temporal = _ema(self._temporal, signals.temporal_change, self.ema)
        return min(max(adj, ADJ_MIN), ADJ_MAX)


def _ema(old: float | None, new: float, k: float) -> float:
    return new if old is None else k * old + (1.0 - k) * new
