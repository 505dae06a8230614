"""A ComfyUI model around an exact denoiser (a torch module returning the EPS prediction), for the
benchmarks' analytic toy models (bench/gmm_model.py, bench/bench_inbetween_gp.py).

The denoiser sees ComfyUI's scaled input and timestep of ModelSamplingContinuousEDM with the EPS
parametrisation (sigma = exp(4 t), x scaled by 1 / sqrt(sigma^2 + 1)); ComfyUI is imported here, when a
model is built, never at import time.
"""

from __future__ import annotations

from typing import Any

import torch


def wrap_denoiser(unet: type[torch.nn.Module], channels: int, *, latent_dimensions: int | None = None,
                  unet_kwargs: dict[str, Any] | None = None, sigma_min: float = 0.002,
                  sigma_max: float = 20.0) -> Any:
    """A ModelPatcher around a BaseModel whose diffusion_model is `unet(**unet_kwargs)` on `channels`
    latent channels (latent_dimensions 3 for video-shaped latents), float32, EPS, continuous EDM sigmas."""
    import comfy.latent_formats
    import comfy.model_base
    import comfy.model_management
    import comfy.model_patcher
    import comfy.model_sampling
    import comfy.supported_models_base

    class ExactLatent(comfy.latent_formats.LatentFormat):
        scale_factor = 1.0
        latent_channels = channels

    if latent_dimensions is not None:
        ExactLatent.latent_dimensions = latent_dimensions

    class ExactConfig(comfy.supported_models_base.BASE):
        unet_config: dict = {}
        unet_extra_config: dict = {}
        latent_format = ExactLatent
        memory_usage_factor = 0.001
        supported_inference_dtypes = [torch.float32]

    class ExactSampling(comfy.model_sampling.EPS, comfy.model_sampling.ModelSamplingContinuousEDM):
        pass

    config = ExactConfig(dict(unet_kwargs or {}))
    config.set_inference_dtype(torch.float32, None)
    model = comfy.model_base.BaseModel(config, model_type=comfy.model_base.ModelType.EPS, unet_model=unet)
    sampling = ExactSampling()
    sampling.set_parameters(sigma_min, sigma_max, 1.0)
    model.model_sampling = sampling
    model.eval()
    device = comfy.model_management.get_torch_device()
    return comfy.model_patcher.ModelPatcher(model, load_device=device, offload_device=device)
