"""The pattern library: analytic fields that turn image coordinates into the CPPN's input channels.

Each pattern maps base coordinates p [P, 2] (already zoomed), the pattern's time t and a warp amount to
[P, 4] channels (two warped coordinates and two field values). All are torch ops, differentiable in the
CPPN weights (the fields themselves hold no learnt parameters)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .config import PATTERNS, PatternsConfig
from .errors import PatternsError


@dataclass(frozen=True)
class FieldParams:
    """Seeded random parts the fields share (noise lattice, voronoi sites)."""

    noise: torch.Tensor  # [1, 2, G + 1, G + 1] two periodic value-noise lattices in -1..1
    sites: torch.Tensor  # [K, 2] voronoi site centres
    phases: torch.Tensor  # [K] voronoi site phases


def make_field_params(config: PatternsConfig, gen: torch.Generator, device: torch.device) -> FieldParams:
    g = config.rint("noise_grid")
    k = config.rint("voronoi_points")
    scale = config.render["coord_scale"]
    noise = torch.rand(1, 2, g, g, generator=gen) * 2 - 1
    noise = torch.cat([noise, noise[:, :, :1]], 2)
    noise = torch.cat([noise, noise[:, :, :, :1]], 3)  # last row/column = first: the lattice wraps seamlessly
    sites = (torch.rand(k, 2, generator=gen) * 2 - 1) * scale
    phases = torch.rand(k, generator=gen) * 2 * math.pi
    return FieldParams(noise.to(device), sites.to(device), phases.to(device))


def _noise(params: FieldParams, p: torch.Tensor, scale: float) -> torch.Tensor:
    """Periodic value noise at points p [P, 2] -> [P, 2] (bilinear on the lattice, wraps around)."""
    q = torch.remainder(p * (scale / 4.0) + 1.0, 2.0) - 1.0  # lattice covers 4/scale units, periodic
    out = F.grid_sample(params.noise, q[None, None], mode="bilinear", padding_mode="border",
                        align_corners=True)
    return out[0, :, 0].T


def _geometric(p: torch.Tensor, t: float, warp: float, params: FieldParams, cfg: PatternsConfig) -> torch.Tensor:
    n = cfg.fields["kaleido_folds"]
    r = torch.sqrt((p * p).sum(1) + 1e-12)
    theta = torch.atan2(p[:, 1], p[:, 0]) + t
    sector = 2 * math.pi / n
    folded = torch.abs(torch.remainder(theta, sector) - sector / 2)
    rr = r * (1 + 0.5 * warp * torch.sin(n * theta))
    return torch.stack([rr * torch.cos(folded), rr * torch.sin(folded), r, torch.cos(n * folded)], 1)


def _organic(p: torch.Tensor, t: float, warp: float, params: FieldParams, cfg: PatternsConfig) -> torch.Tensor:
    s, off = cfg.fields["noise_scale"], cfg.fields["noise_warp_offset"]
    drift = torch.tensor([t, -0.5 * t], device=p.device, dtype=p.dtype)
    q = _noise(params, p + drift, s)
    p2 = p + (1 + warp) * q
    n2 = _noise(params, p2 + off, s)
    return torch.stack([p2[:, 0], p2[:, 1], n2[:, 0], torch.sqrt((q * q).sum(1) + 1e-12)], 1)


def _flowing(p: torch.Tensor, t: float, warp: float, params: FieldParams, cfg: PatternsConfig) -> torch.Tensor:
    s, dt = cfg.fields["noise_scale"], cfg.fields["flow_dt"] * (1 + warp)
    eps = 1.0 / (s * cfg.rint("noise_grid"))
    drift = torch.tensor([0.0, t], device=p.device, dtype=p.dtype)
    ex = torch.tensor([eps, 0.0], device=p.device, dtype=p.dtype)
    ey = torch.tensor([0.0, eps], device=p.device, dtype=p.dtype)
    q = p
    speed = torch.zeros_like(p[:, 0])
    for _ in range(cfg.rint("flow_steps")):  # curl of the potential: divergence-free flow
        dpsi_dx = (_noise(params, q + drift + ex, s)[:, 0] - _noise(params, q + drift - ex, s)[:, 0]) / (2 * eps)
        dpsi_dy = (_noise(params, q + drift + ey, s)[:, 0] - _noise(params, q + drift - ey, s)[:, 0]) / (2 * eps)
        v = torch.stack([dpsi_dy, -dpsi_dx], 1) / (s * cfg.rint("noise_grid"))
        q = q + dt * v
        speed = torch.sqrt((v * v).sum(1) + 1e-12)
    return torch.stack([q[:, 0], q[:, 1], _noise(params, q + drift, s)[:, 1], speed], 1)


def _fractal(p: torch.Tensor, t: float, warp: float, params: FieldParams, cfg: PatternsConfig) -> torch.Tensor:
    f = cfg.fields
    orbit = f["julia_orbit"] * (1 + warp)
    cr, ci = f["julia_re"] + orbit * math.cos(t), f["julia_im"] + orbit * math.sin(t)
    zr, zi = p[:, 0] * f["julia_scale"], p[:, 1] * f["julia_scale"]
    trap = torch.full_like(zr, 1e3)
    live = torch.ones_like(zr)
    esc2 = f["escape_radius"] ** 2
    for _ in range(cfg.rint("fractal_iterations")):
        zr, zi = zr * zr - zi * zi + cr, 2 * zr * zi + ci
        m2 = zr * zr + zi * zi
        live = live * (m2 < esc2).to(p.dtype)
        zr, zi = zr.clamp(-f["escape_radius"], f["escape_radius"]), zi.clamp(-f["escape_radius"], f["escape_radius"])
        trap = torch.minimum(trap, torch.where(live > 0, torch.sqrt(m2 + 1e-12), trap))
    return torch.stack([p[:, 0], p[:, 1], torch.exp(-f["trap_sharpness"] * trap), live], 1)


def _voronoi(p: torch.Tensor, t: float, warp: float, params: FieldParams, cfg: PatternsConfig) -> torch.Tensor:
    r = cfg.fields["voronoi_orbit"] * (1 + warp)
    ang = params.phases + t
    sites = params.sites + r * torch.stack([torch.cos(ang), torch.sin(ang)], 1)
    f1 = torch.full_like(p[:, 0], 1e6)
    f2 = f1.clone()
    for site in sites:  # the two nearest sites, without a [P, K] distance matrix
        d = torch.sqrt(((p - site) ** 2).sum(1) + 1e-12)
        f2 = torch.minimum(f2, torch.maximum(f1, d))
        f1 = torch.minimum(f1, d)
    return torch.stack([p[:, 0], p[:, 1], f1, f2 - f1], 1)


_PATTERNS: dict[str, Callable[[torch.Tensor, float, float, FieldParams, PatternsConfig], torch.Tensor]] = {
    "geometric": _geometric, "organic": _organic, "flowing": _flowing, "fractal": _fractal, "voronoi": _voronoi,
}
if set(_PATTERNS) != set(PATTERNS):
    raise RuntimeError("fields: the pattern table and config.PATTERNS disagree")
CHANNELS = 4


def check_pattern(name: str) -> str:
    if name not in _PATTERNS:
        raise PatternsError(f"pattern: unknown pattern {name!r} (known: {', '.join(PATTERNS)})")
    return name


def pattern_field(name: str, p: torch.Tensor, t: float, warp: float, params: FieldParams,
                  config: PatternsConfig) -> torch.Tensor:
    """p [P, 2] -> [P, CHANNELS]."""
    return _PATTERNS[check_pattern(name)](p, t, warp, params, config)
