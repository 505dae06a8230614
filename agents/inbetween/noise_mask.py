"""Per-frame keep values -> a LATENT noise_mask for ComfyUI's masked sampling (pure numpy).

ComfyUI's KSampler (KSamplerX0Inpaint) mixes, at every step, the sampled latent x with the input
latent re-noised to the current sigma: x <- m x + (1 - m) (latent + sigma noise), and returns
m denoised + (1 - m) latent. So m = 0 re-imposes a key at every step (it comes out as encoded),
m = 1 lets the frame follow the model from the sampler's start sigma (set by denoise), and 0 < m < 1
pulls the frame back towards its interpolation by (1 - m) at every step: a per-frame strength.
ComfyUI tiles a mask shorter than the batch without a word, so counts are checked here.
"""

from __future__ import annotations

import numpy as np

from .keys import InbetweenInputError


def latent_frame_values(values: np.ndarray, latent_frames: int, frames_per_latent: int) -> np.ndarray:
    """Frame values -> one value per latent frame. With temporal compression r (video VAEs such as
    Wan's: latent frame 0 = frame 0, latent frame j = frames (j-1) r + 1 .. j r) a latent frame takes
    the smallest value it covers, so a key fixes its whole latent frame."""
    n = len(values)
    r = frames_per_latent
    if r == 1:
        if n != latent_frames:
            raise InbetweenInputError(f"keep_mask: {n} frames for a latent of {latent_frames} frames")
        return values.astype(np.float32)
    if n != (latent_frames - 1) * r + 1:
        raise InbetweenInputError(
            f"keep_mask: {n} frames do not fit {latent_frames} latent frames at {r} frames per latent frame "
            f"(expected {(latent_frames - 1) * r + 1})")
    out = [values[0]] + [values[(j - 1) * r + 1:j * r + 1].min() for j in range(1, latent_frames)]
    return np.asarray(out, np.float32)


def latent_noise_mask(values: np.ndarray, latent_shape: tuple[int, ...], strength: float,
                      frames_per_latent: int = 1) -> np.ndarray:
    """[B, 1, H, W] for an image batch (one frame per batch item) or [B, 1, T, H, W] for a video latent."""
    values = np.asarray(values, np.float32)
    if not np.isfinite(values).all() or values.min() < 0 or values.max() > 1:
        raise InbetweenInputError("keep_mask: values must lie in 0..1")
    if not 0.0 <= strength <= 1.0:
        raise InbetweenInputError(f"strength: {strength} is outside 0..1")
    if len(latent_shape) == 4:
        b, _, h, w = latent_shape
        v = latent_frame_values(values, b, 1) * np.float32(strength)
        return np.ascontiguousarray(np.broadcast_to(v[:, None, None, None], (b, 1, h, w)))
    if len(latent_shape) == 5:
        b, _, t, h, w = latent_shape
        v = latent_frame_values(values, t, frames_per_latent) * np.float32(strength)
        return np.ascontiguousarray(np.broadcast_to(v[None, None, :, None, None], (b, 1, t, h, w)))
    raise InbetweenInputError(f"latent: expected [B, C, H, W] or [B, C, T, H, W] samples, got {list(latent_shape)}")
