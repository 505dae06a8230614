"""The guidance benchmark's imperfect conditional model (bench/gmm_model.py, cond_error): its denoiser is the
exact posterior mean of the density (1 - e) p(x | c) + e p(x), checked against that mixture built from the
exact model's own parts, and e = 0 is the exact model."""

from __future__ import annotations

import math

import pytest
import torch

from bench.gmm_model import make_gmm, posterior_mean


def _log_density(spec, x, sigma, cls):
    """log p_sigma(x | cls) (cls -1: the whole mixture), Gaussian modes of variance std^2 + sigma^2."""
    v = spec.std**2 + sigma**2
    d2 = torch.cdist(x.double(), spec.means).square()
    logit = spec.log_weights.unsqueeze(0) - d2 / (2 * v) - 0.5 * spec.dim * math.log(2 * math.pi * v)
    if cls >= 0:
        keep = spec.mode_class == cls
        logit = logit[:, keep] - torch.logsumexp(spec.log_weights[keep], dim=0)
    return torch.logsumexp(logit, dim=1)


@pytest.mark.parametrize("sigma", [0.05, 0.6, 4.0])
def test_the_imperfect_denoiser_is_the_posterior_mean_of_the_blended_density(sigma):
    e = 0.3
    exact = make_gmm(dim=4, classes=3, modes=2, spread=1.0, seed=7)
    blurred = make_gmm(dim=4, classes=3, modes=2, spread=1.0, seed=7, cond_error=e)
    x = torch.randn(64, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * (1 + sigma)
    s = torch.full((64,), sigma, dtype=torch.float64)
    cls = torch.full((64,), 1)
    d_c = posterior_mean(exact, x, s, cls)
    d_u = posterior_mean(exact, x, s, torch.full((64,), -1))
    # a mixture's posterior mean: the parts' means weighted by their share of the density at x
    a = math.log(1 - e) + _log_density(exact, x, sigma, 1)
    b = math.log(e) + _log_density(exact, x, sigma, -1)
    share = torch.sigmoid(a - b).unsqueeze(1)
    expected = share * d_c + (1 - share) * d_u
    assert torch.allclose(posterior_mean(blurred, x, s, cls), expected, atol=1e-10)
    # the unconditional model stays exact; the conditional one moves off the exact one
    assert torch.equal(posterior_mean(blurred, x, s, torch.full((64,), -1)), d_u)
    assert (posterior_mean(blurred, x, s, cls) - d_c).abs().max() > 1e-3


def test_no_error_is_the_exact_model_and_a_bad_error_is_named():
    spec = make_gmm(dim=3, classes=2, modes=1, seed=2)
    assert spec.cond_error == 0.0
    with pytest.raises(ValueError, match="cond_error"):
        make_gmm(cond_error=1.0)
    with pytest.raises(ValueError, match="cond_error"):
        make_gmm(cond_error=-0.1)
