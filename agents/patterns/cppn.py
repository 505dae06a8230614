"""The CPPN: pattern channels + radius + latent z -> a scalar field, through `hidden_layers` layers
(sin on the first, tanh after), each with its own frequency. Weight sets are seeded; slerp moves
between two of them."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .config import PatternsConfig
from .fields import CHANNELS

IN_FEATURES = CHANNELS + 1  # the pattern's channels and the radius


@dataclass
class CPPNWeights:
    """One weight set: layers[i] = (W [in, out], b [out]); the first layer also takes z via wz [latent, width]."""

    wz: torch.Tensor
    layers: list[tuple[torch.Tensor, torch.Tensor]]

    def flat(self) -> torch.Tensor:
        return torch.cat([self.wz.reshape(-1)] + [torch.cat([w.reshape(-1), b]) for w, b in self.layers])

    def like(self, flat: torch.Tensor) -> CPPNWeights:
        i = self.wz.numel()
        wz = flat[:i].reshape(self.wz.shape)
        layers = []
        for w, b in self.layers:
            wn, bn = w.numel(), b.numel()
            layers.append((flat[i:i + wn].reshape(w.shape), flat[i + wn:i + wn + bn]))
            i += wn + bn
        return CPPNWeights(wz, layers)

    def to(self, device: torch.device) -> CPPNWeights:
        return CPPNWeights(self.wz.to(device), [(w.to(device), b.to(device)) for w, b in self.layers])

    def requires_grad_(self) -> list[torch.Tensor]:
        params = [self.wz] + [t for pair in self.layers for t in pair]
        for t in params:
            t.requires_grad_(True)
        return params


def random_weights(config: PatternsConfig, gen: torch.Generator) -> CPPNWeights:
    width, depth, latent = config.rint("hidden_width"), config.rint("hidden_layers"), config.rint("latent_dim")
    std = config.render["weight_std"]
    sizes = [IN_FEATURES] + [width] * depth + [1]
    layers = []
    for a, b in zip(sizes[:-1], sizes[1:], strict=True):
        layers.append((torch.randn(a, b, generator=gen) * std / a ** 0.5 * 2.0, torch.randn(b, generator=gen) * std))
    wz = torch.randn(latent, width, generator=gen) * std / latent ** 0.5
    return CPPNWeights(wz, layers)


def slerp(a: CPPNWeights, b: CPPNWeights, s: float) -> CPPNWeights:
    """Spherical interpolation of the flattened weights (keeps their norm, unlike a straight blend)."""
    fa, fb = a.flat(), b.flat()
    na, nb = fa.norm(), fb.norm()
    ua, ub = fa / na, fb / nb
    omega = torch.arccos(torch.clamp((ua * ub).sum(), -1.0, 1.0))
    if float(omega) < 1e-6:
        return a.like(fa + s * (fb - fa))
    so = torch.sin(omega)
    u = (torch.sin((1 - s) * omega) / so) * ua + (torch.sin(s * omega) / so) * ub
    return a.like(u * ((1 - s) * na + s * nb))


def cppn_forward(x: torch.Tensor, z: torch.Tensor, w: CPPNWeights, freq: tuple[float, ...]) -> torch.Tensor:
    """x [P, IN_FEATURES], z [latent] -> [P] in (0, 1). Layer i computes act(freq_i * (h W_i + b_i)); the
    frequency is folded into the small weight matrices, not applied to the [P, width] activations."""
    w0, b0 = w.layers[0]
    h = torch.sin(torch.addmm(freq[0] * (b0 + z @ w.wz), x, freq[0] * w0))
    for i, (wi, bi) in enumerate(w.layers[1:-1], start=1):
        h = torch.tanh_(torch.addmm(freq[i] * bi, h, freq[i] * wi))
    wo, bo = w.layers[-1]
    return torch.sigmoid(torch.addmm(bo, h, wo))[:, 0]
