"""Imputation mechanics with exact truth: a Gaussian-process prior over frames, keys given, through
ComfyUI's own samplers with the per-frame noise_mask M4 Inbetween Noise Mask builds.

Run from the repository root:  $PY bench/bench_inbetween_gp.py [--quick]

Prior: a sequence of T frames, each a C-dim latent; every channel is an independent GP over time with
an RBF kernel K (lengthscale ell frames). The model is a real ComfyUI BaseModel (EPS, EDM sigmas) whose
denoiser is exact: x_sigma = x0 + sigma eps gives E[x0 | x_sigma] = K (K + sigma^2 I)^-1 x_sigma per
channel. Given the keys x_k, the missing frames' posterior is closed form:
N(K_mk K_kk^-1 x_k, K_mm - K_mk K_kk^-1 K_km). Each method's samples of the missing frames are
compared with exact posterior samples by sliced Wasserstein distance (SWD), and with the posterior
mean (RMSE of the sample mean); key error = max |output key - given key|.

Methods (all on a video-shaped latent [N, C, T, 1, 1] with noise_mask [N, 1, T, 1, 1], keys 0):
- interpolation only: linear interpolation between the keys (no sampler);
- interpolation + noise + masked partial denoise (denoise 0.35 / 0.6, hard and soft masks);
- full-noise masked sampling (denoise 1.0 from noise, keys re-imposed at every step).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]


def setup():
    sys.path[:0] = [str(REPO / "scripts"), str(REPO / "tests"), str(REPO)]
    import comfy_host  # scripts/comfy_host.py: finds (or fetches) the pinned ComfyUI
    from host import inprocess

    inprocess.import_comfy(comfy_host.ensure_comfyui())


def rbf(t: int, ell: float) -> torch.Tensor:
    idx = torch.arange(t, dtype=torch.float64)
    return torch.exp(-0.5 * (idx[:, None] - idx[None, :]) ** 2 / ell**2) + 1e-6 * torch.eye(t, dtype=torch.float64)


def build_model(kernel: torch.Tensor, channels: int):
    """A ModelPatcher whose diffusion model is the exact GP posterior mean over time (video-shaped latents)."""
    from bench.exact_model import wrap_denoiser  # the repository root is on sys.path once setup() ran

    class ExactGP(torch.nn.Module):
        def __init__(self, **_unused):
            super().__init__()
            self.dtype = torch.float32
            self.register_buffer("kernel", kernel.float())  # a weight so ComfyUI can size the model

        def forward(self, x, timesteps, context=None, transformer_options=None, **kwargs):
            sigma = torch.exp(4.0 * timesteps.double()).cpu()  # inverse of ModelSamplingContinuousEDM.timestep
            xs = x.double().cpu() * torch.sqrt(sigma**2 + 1.0).reshape(-1, 1, 1, 1, 1)
            seq = xs[:, :, :, 0, 0]  # [N, C, T]
            eye = torch.eye(kernel.shape[0], dtype=torch.float64)
            out = torch.empty_like(seq)
            for i in range(seq.shape[0]):
                gain = kernel @ torch.linalg.inv(kernel + sigma[i] ** 2 * eye)
                out[i] = seq[i] @ gain.T
            eps = (seq - out) / sigma.reshape(-1, 1, 1)
            return eps[:, :, :, None, None].to(x.dtype).to(x.device)

    return wrap_denoiser(ExactGP, channels, latent_dimensions=3)


def swd(a: torch.Tensor, b: torch.Tensor, projections: int = 128, seed: int = 7) -> float:
    gen = torch.Generator().manual_seed(seed)
    d = torch.randn(a.shape[1], projections, generator=gen, dtype=torch.float64)
    d /= d.norm(dim=0, keepdim=True)
    pa, _ = torch.sort(a.double() @ d, dim=0)
    pb, _ = torch.sort(b.double() @ d, dim=0)
    return float(((pa - pb) ** 2).mean().sqrt())


def posterior(kernel: torch.Tensor, keys: list[int], xk: torch.Tensor, n: int, seed: int):
    """Exact posterior samples of the missing frames [n, C * |missing|] and its mean [C, |missing|]."""
    t = kernel.shape[0]
    miss = [i for i in range(t) if i not in keys]
    kkk = kernel[keys][:, keys]
    kmk = kernel[miss][:, keys]
    gain = kmk @ torch.linalg.inv(kkk)
    mean = xk @ gain.T  # [C, M]
    cov = kernel[miss][:, miss] - gain @ kmk.T
    chol = torch.linalg.cholesky(cov + 1e-9 * torch.eye(len(miss), dtype=torch.float64))
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(n, xk.shape[0], len(miss), generator=gen, dtype=torch.float64)
    return (mean[None] + z @ chol.T).reshape(n, -1), mean, miss


def interpolate(xk: torch.Tensor, keys: list[int], t: int) -> torch.Tensor:
    """Linear interpolation between keys (what the imputer's dissolve does to latents): [C, T]."""
    out = torch.empty(xk.shape[0], t, dtype=torch.float64)
    for j, (a, b) in enumerate(zip(keys[:-1], keys[1:], strict=True)):
        for f in range(a, b + 1):
            w = (f - a) / (b - a)
            out[:, f] = (1 - w) * xk[:, j] + w * xk[:, j + 1]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="128 samples, 12 steps")
    args = ap.parse_args()
    setup()
    import comfy.sample

    sys.path.insert(0, str(REPO))
    from agents.inbetween.imputer import keep_mask
    from agents.inbetween.noise_mask import latent_noise_mask

    n, steps = (128, 12) if args.quick else (512, 30)
    t, channels, ell = 17, 4, 3.0
    keys = list(range(0, t, 8))  # 0, 8, 16
    kernel = rbf(t, ell)
    model = build_model(kernel, channels)
    gen = torch.Generator().manual_seed(0)
    truth = torch.linalg.cholesky(kernel) @ torch.randn(t, channels, generator=gen, dtype=torch.float64)
    xk = truth.T[:, keys]  # [C, K]
    post, mean, miss = posterior(kernel, keys, xk, n, seed=1)
    interp = interpolate(xk, keys, t)
    base = interp.float()[None, :, :, None, None].repeat(n, 1, 1, 1, 1)  # [N, C, T, 1, 1]
    cond = [[torch.zeros(1, 1, 4), {}]]
    print(f"GP prior: {t} frames x {channels} channels, RBF lengthscale {ell:g}, keys {keys}; {n} samples, "
          f"euler {steps} steps through comfy.sample.sample with the pack's noise_mask")
    print(f"{'method':<50}{'SWD':>8}{'mean RMSE':>11}{'key err':>10}{'time s':>8}")

    def report(name: str, out: torch.Tensor, secs: float) -> None:
        seq = out.double()[:, :, :, 0, 0]
        got = seq[:, :, miss].reshape(n, -1)
        rmse = float((seq[:, :, miss].mean(dim=0) - mean).pow(2).mean().sqrt())
        key_err = float((seq[:, :, keys] - xk[None]).abs().max())
        print(f"{name:<50}{swd(got, post):>8.3f}{rmse:>11.3f}{key_err:>10.1e}{secs:>8.2f}")

    second = posterior(kernel, keys, xk, n, seed=2)[0]
    report("exact posterior (a second draw: the SWD floor)", _with_keys(second, xk, keys, miss, n, channels, t), 0.0)
    report("interpolation only", base, 0.0)
    for soft in (False, True):
        mask = latent_noise_mask(keep_mask(keys, t, soft), tuple(base.shape), 1.0)
        for denoise in (0.35, 0.6, 1.0):
            if soft and denoise == 1.0:
                continue
            t0 = time.perf_counter()
            noise = comfy.sample.prepare_noise(base, 3)
            out = comfy.sample.sample(model, noise, steps, 1.0, "euler", "karras", cond, cond, base,
                                      denoise=denoise, noise_mask=torch.from_numpy(mask), seed=3, disable_pbar=True)
            label = ("full-noise masked sampling" if denoise == 1.0 else
                     f"interp + noise + masked denoise {denoise:g}") + (" (soft mask)" if soft else "")
            report(label, out, time.perf_counter() - t0)


def _with_keys(samples: torch.Tensor, xk: torch.Tensor, keys: list[int], miss: list[int], n: int, channels: int,
               t: int) -> torch.Tensor:
    seq = torch.empty(n, channels, t, dtype=torch.float64)
    seq[:, :, miss] = samples.reshape(n, channels, len(miss))
    seq[:, :, keys] = xk[None]
    return seq[:, :, :, None, None]


if __name__ == "__main__":
    main()
