"""Conversions between ComfyUI tensors and the numpy arrays the agents take."""

from __future__ import annotations

import numpy as np
import torch


def image_batch_to_numpy(image: torch.Tensor, input_name: str) -> list[np.ndarray]:
    """IMAGE [B, H, W, C] float 0..1 -> list of (H, W, C) float32 arrays, with a named error."""
    if not isinstance(image, torch.Tensor) or image.ndim != 4:
        shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
        raise ValueError(f"{input_name}: expected an IMAGE tensor [batch, height, width, channels], got {shape}")
    if image.shape[0] == 0:
        raise ValueError(f"{input_name}: the image batch is empty")
    arr = image.detach().to("cpu", torch.float32).numpy()
    return [np.ascontiguousarray(arr[i]) for i in range(arr.shape[0])]
