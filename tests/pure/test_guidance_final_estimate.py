"""What a run returns after an early stop (controller.final_estimate) and the guidance gap's two references,
on Gaussians whose posterior is known in closed form."""

from __future__ import annotations

import math

import pytest
import torch

from agents.guidance import EarlyExitSettings, GuidanceController, GuidanceInputError, GuidanceSettings
from agents.guidance.controller import final_estimate, guidance_gap


def _gaussian(n: int, dim: int, v: float, sigma: float, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """x = x0 + sigma eps with x0 ~ N(0, v I), and its exact posterior mean D = v / (v + sigma^2) x."""
    g = torch.Generator().manual_seed(seed)
    x = math.sqrt(v) * torch.randn(n, dim, generator=g, dtype=torch.float64)
    x = x + sigma * torch.randn(n, dim, generator=g, dtype=torch.float64)
    return x, v / (v + sigma**2) * x


@pytest.mark.parametrize("sigma", [0.05, 0.15, 0.3])
def test_spread_matched_restores_the_data_variance_at_low_noise(sigma: float) -> None:
    v = 0.25
    x, d = _gaussian(512, 64, v, sigma)
    plain = final_estimate(x, d, sigma, "denoised")
    matched = final_estimate(x, d, sigma, "spread matched")
    assert torch.equal(plain, d)
    # the posterior mean is too narrow by the posterior variance: var v^2 / (v + sigma^2)
    assert float(plain.var()) == pytest.approx(v * v / (v + sigma**2), rel=0.03)
    assert float(matched.var()) == pytest.approx(v, rel=0.03)
    u = v / sigma**2
    c = math.sqrt(u * (u + 1)) - u  # the Gaussian's exact coefficient
    assert float((matched - d).norm() / (x - d).norm()) == pytest.approx(c, rel=0.03)


def test_spread_matched_is_nearer_the_data_variance_than_either_fixed_choice_at_high_noise() -> None:
    v, sigma = 0.25, 1.0  # the residual's per-item estimate is noisier here: nearer, not exact
    x, d = _gaussian(512, 64, v, sigma)
    err = {k: abs(float(final_estimate(x, d, sigma, k).var()) - v) for k in ("denoised", "half step", "spread matched")}
    assert err["spread matched"] < 0.15 * v
    assert err["spread matched"] < min(err["denoised"], err["half step"]) / 3


def test_half_step_is_the_euler_point_at_half_the_noise_and_matches_at_low_noise() -> None:
    v, sigma = 0.25, 0.05
    x, d = _gaussian(256, 64, v, sigma)
    half = final_estimate(x, d, sigma, "half step")
    assert torch.allclose(half, d + (x - d) * 0.5)
    assert float(half.var()) == pytest.approx(v, rel=0.03)
    # at high noise 1/2 overshoots the spread; spread matched does not
    x, d = _gaussian(256, 64, v, 1.0)
    assert float(final_estimate(x, d, 1.0, "half step").var()) > 1.3 * v


def test_spread_matched_is_per_batch_item_and_keeps_the_latent_shape() -> None:
    """Each item's coefficient comes from its own residual: a converged item is not moved by another's."""
    x = torch.zeros(2, 4, 3, 2, 2)  # video-shaped [B, C, T, H, W]
    d = torch.zeros_like(x)
    x[0] += 1e-3  # item 0: residual far under the noise level -> coefficient near 1/2
    x[1] += 0.1  # item 1: residual equal to the noise level -> coefficient 0
    out = final_estimate(x, d, 0.1, "spread matched")
    assert out.shape == x.shape
    assert float(out[0].mean() / 1e-3) == pytest.approx(0.5, abs=0.01)
    assert float(out[1].abs().max()) < 1e-6


def test_the_controller_freezes_the_chosen_estimate_and_unknown_values_name_the_option() -> None:
    x, d = _gaussian(4, 16, 0.25, 0.05)
    runs = {}
    for kind in ("denoised", "spread matched"):
        early = EarlyExitSettings(tolerance=10.0, patience=1, min_fraction=0.0, rule="residual", estimate=kind)
        c = GuidanceController(GuidanceSettings(schedule="constant", skip_below=0.0, early_exit=early))
        c.begin(3.0, 0.05, 0.1)
        c.end(x, d, None, None, 0.05, 0.1, 0.9)
        runs[kind] = c.begin(3.0, 0.04, 0.05).frozen
    assert torch.equal(runs["denoised"], d)
    assert torch.allclose(runs["spread matched"], final_estimate(x, d, 0.05, "spread matched"))
    with pytest.raises(GuidanceInputError, match="early_stop_estimate"):
        EarlyExitSettings(estimate="midpoint")
    with pytest.raises(GuidanceInputError, match="gap_measure"):
        GuidanceSettings(gap_measure="both")


def test_the_estimate_gap_falls_at_low_noise_where_the_residual_gap_does_not() -> None:
    """Two overlapping 1-mode classes N(+-m, v): as sigma -> 0 both estimates tend to x, so ||D_c - D_u|| / ||D_c||
    falls; ||x - D_c|| shrinks just as fast, so the residual gap stays put."""
    m, v = 0.2, 0.1
    g = torch.Generator().manual_seed(1)
    x0 = m + math.sqrt(v) * torch.randn(256, 2, generator=g, dtype=torch.float64)
    mus = torch.tensor([[m, m], [-m, -m]], dtype=torch.float64)

    def post(x: torch.Tensor, sigma: float, classes: list[int]) -> torch.Tensor:
        s2 = v + sigma**2
        logit = -torch.cdist(x, mus[classes]).square() / (2 * s2)
        r = torch.softmax(logit, dim=1)
        per = mus[classes].unsqueeze(0) + v / s2 * (x.unsqueeze(1) - mus[classes].unsqueeze(0))
        return (r.unsqueeze(2) * per).sum(dim=1)

    gaps: dict[str, list[float]] = {"residual": [], "estimate": []}
    for sigma in (0.3, 0.1, 0.03):
        x = x0 + sigma * torch.randn(x0.shape, generator=g, dtype=torch.float64)
        dc, du = post(x, sigma, [0]), post(x, sigma, [0, 1])
        for k, out in gaps.items():
            out.append(guidance_gap(x, dc, du, k))
    assert gaps["estimate"][-1] < 0.2 * gaps["estimate"][0]
    assert gaps["residual"][-1] > 0.5 * gaps["residual"][0]


def test_the_preset_returns_the_spread_matched_estimate_and_the_defaults_keep_todays_behaviour() -> None:
    from agents.guidance import parse_options

    opts = parse_options({"preset": "gap_residual"})
    assert opts["early_stop_estimate"] == "spread matched" and opts["gap_measure"] == "residual"
    plain = parse_options({})
    assert plain["gap_measure"] == "residual" and plain["early_stop_estimate"] == "denoised"
