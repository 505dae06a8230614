"""A class-conditional Gaussian mixture as a real ComfyUI model, with its exact denoiser.

x0 ~ sum_m w_m N(mu_m, s^2 I); x_sigma = x0 + sigma * eps. Then x_sigma ~ sum_m w_m N(mu_m, (s^2 + sigma^2) I)
and the ideal denoiser is closed-form: E[x0 | x_sigma] = sum_m r_m(x) (mu_m + s^2 / (s^2 + sigma^2) (x - mu_m)),
r_m the posterior mode responsibilities. Conditioning picks a class (one-hot cross-attention tensor;
the zero tensor = the unconditional mixture over all classes), so CFG, every guidance schedule and
ComfyUI's own samplers run on a model whose score is known exactly.

`cond_error` e > 0 makes the conditional model imperfect in a known way, as a checkpoint whose prompt
adherence is weak: its conditional density is (1 - e) p(x | c) + e p(x) (still a mixture, so still exact in
closed form), while the target stays p(x | c). Unguided samples then land in another class with
probability about e (1 - 1/classes), which guidance has to correct; with e = 0 the conditional model is
exact and needs no guidance at all.

The wrapper is a comfy.model_base.BaseModel (EPS prediction, EDM-style continuous sigmas) inside a
comfy.model_patcher.ModelPatcher, so comfy.sample / CFGGuider drive it like any checkpoint. Latents
are [N, C, *spatial] and the mixture lives on the flattened C*spatial vector, so video-shaped latents
work too. Requires ComfyUI importable (comfy on sys.path).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from bench.exact_model import wrap_denoiser


@dataclass
class GMMSpec:
    means: torch.Tensor  # [modes_total, dim]
    mode_class: torch.Tensor  # [modes_total] class index of each mode
    log_weights: torch.Tensor  # [modes_total] log w within the full mixture
    std: float
    classes: int
    cond_error: float = 0.0  # the conditional model's weight on the unconditional mixture (module docstring)

    @property
    def dim(self) -> int:
        return int(self.means.shape[1])


def make_gmm(dim: int = 8, classes: int = 3, modes: int = 3, std: float = 0.35, spread: float = 1.2,
             seed: int = 0, cond_error: float = 0.0) -> GMMSpec:
    """Random class-conditional mixture: `modes` equally weighted modes per class, classes equally weighted."""
    if dim < 1 or classes < 2 or modes < 1:
        raise ValueError("make_gmm: need dim >= 1, classes >= 2, modes >= 1")
    if not 0.0 <= cond_error < 1.0:
        raise ValueError(f"make_gmm: cond_error must be in [0, 1), got {cond_error}")
    g = torch.Generator().manual_seed(seed)
    means = torch.randn(classes * modes, dim, generator=g, dtype=torch.float64) * spread
    mode_class = torch.arange(classes).repeat_interleave(modes)
    log_w = torch.full((classes * modes,), -math.log(classes * modes), dtype=torch.float64)
    return GMMSpec(means, mode_class, log_w, float(std), classes, float(cond_error))


def posterior_mean(spec: GMMSpec, x: torch.Tensor, sigma: torch.Tensor, class_idx: torch.Tensor) -> torch.Tensor:
    """E[x0 | x_sigma] row by row. x [B, dim], sigma [B], class_idx [B] (-1 = unconditional)."""
    x = x.double()
    sigma = sigma.double().reshape(-1, 1)
    v = spec.std**2 + sigma**2  # [B, 1]
    d2 = torch.cdist(x, spec.means).square()  # [B, M]
    uncond = class_idx.reshape(-1, 1) < 0
    in_class = spec.mode_class.unsqueeze(0) == class_idx.reshape(-1, 1)  # [B, M]
    log_w = spec.log_weights.unsqueeze(0).expand(x.shape[0], -1)
    if spec.cond_error > 0:  # (1 - e) p(x | c) + e p(x) as mode weights
        w, e = spec.log_weights.exp().unsqueeze(0), spec.cond_error
        cond_w = (1.0 - e) * in_class.double() * w / (in_class.double() * w).sum(dim=1, keepdim=True) + e * w
        log_w = torch.where(uncond, log_w, cond_w.log())
    else:  # the exact model: a class's own modes only (the same values as masking the logits afterwards)
        log_w = log_w.masked_fill(~(uncond | in_class), -math.inf)
    logit = log_w - d2 / (2 * v) - 0.5 * spec.dim * torch.log(v)
    r = torch.softmax(logit, dim=1)  # [B, M]
    shrink = spec.std**2 / v  # [B, 1]
    per_mode = spec.means.unsqueeze(0) + shrink.unsqueeze(2) * (x.unsqueeze(1) - spec.means.unsqueeze(0))
    return (r.unsqueeze(2) * per_mode).sum(dim=1)


def sample_true(spec: GMMSpec, class_idx: int, n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    modes = torch.nonzero(spec.mode_class == class_idx).flatten()
    pick = modes[torch.randint(len(modes), (n,), generator=g)]
    return spec.means[pick] + spec.std * torch.randn(n, spec.dim, generator=g, dtype=torch.float64)


def class_context(spec: GMMSpec, class_idx: int | None) -> torch.Tensor:
    """Cross-attention tensor [1, 1, classes]: one-hot for a class, zeros for unconditional."""
    c = torch.zeros(1, 1, spec.classes)
    if class_idx is not None:
        c[0, 0, class_idx] = 1.0
    return c


def build_model(spec: GMMSpec, sigma_min: float = 0.002, sigma_max: float = 20.0):
    """A ModelPatcher around a BaseModel whose diffusion_model is the exact GMM denoiser."""

    class ExactDenoiser(torch.nn.Module):
        """Returns the exact EPS prediction for the EPS parametrisation of bench/exact_model.py."""

        def __init__(self, gmm: GMMSpec | None = None, **_unused):
            super().__init__()
            self.gmm = gmm
            self.dtype = torch.float32
            self.register_buffer("means", gmm.means.float())  # a weight so ComfyUI can size/move the model

        def forward(self, x, timesteps, context=None, transformer_options=None, **kwargs):
            sigma = torch.exp(4.0 * timesteps.double())  # inverse of ModelSamplingContinuousEDM.timestep
            flat = x.reshape(x.shape[0], -1).double() * torch.sqrt(sigma**2 + 1.0).reshape(-1, 1)
            if context is None:
                cls_idx = torch.full((x.shape[0],), -1, dtype=torch.long)
            else:
                ctx = context[:, 0, :].double().cpu()
                none = torch.full((ctx.shape[0],), -1, dtype=torch.long)
                cls_idx = torch.where(ctx.abs().sum(dim=1) > 0, ctx.argmax(dim=1), none)
            d = posterior_mean(self.gmm, flat.cpu(), sigma.cpu(), cls_idx)
            eps = (flat.cpu() - d) / sigma.cpu().reshape(-1, 1)
            return eps.reshape(x.shape).to(x.dtype).to(x.device)

    return wrap_denoiser(ExactDenoiser, spec.dim, unet_kwargs={"gmm": spec}, sigma_min=sigma_min,
                         sigma_max=sigma_max)


class RowCounter:
    """Counts model rows by cond/uncond with a forward pre-hook on the diffusion model."""

    def __init__(self, patcher):
        self.cond = 0
        self.uncond = 0
        self.calls: list[tuple[int, int]] = []
        self._handle = patcher.model.diffusion_model.register_forward_pre_hook(self._hook, with_kwargs=True)

    def _hook(self, module, args, kwargs):
        x = args[0]
        kinds = (kwargs.get("transformer_options") or {}).get("cond_or_uncond", [0])
        per = x.shape[0] // max(len(kinds), 1)
        u = per * sum(1 for k in kinds if k == 1)
        self.uncond += u
        self.cond += x.shape[0] - u
        self.calls.append((x.shape[0] - u, u))

    def close(self) -> None:
        self._handle.remove()
