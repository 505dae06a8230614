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


def _u8_exact(f: np.ndarray) -> np.ndarray | None:
    """f (float 0..1) as uint8 when every value is k/255 (what LoadImage makes of an 8-bit file), else None."""
    u8 = np.rint(np.clip(f, 0.0, 1.0) * 255.0).astype(np.uint8)
    return u8 if np.allclose(u8.astype(np.float32) / 255.0, f, rtol=0.0, atol=1e-6) else None


def with_mask(arrays: list[np.ndarray], mask: torch.Tensor | None, input_name: str) -> list[np.ndarray]:
    """The images with a ComfyUI MASK as their alpha (RGBA): the agents then composite them on white, as
    `./m4 plan` does for a transparent file. ComfyUI's LoadImage drops a file's alpha into its MASK output
    as 1 - alpha (1 = transparent) and keeps the hidden colour in IMAGE, so without this a transparent
    sketch whose hidden pixels are black reaches the agents as black. LoadImage's placeholder for a file
    without alpha (an all-zero 64x64 mask of another size) changes nothing. 8-bit images with 8-bit masks
    are rebuilt as uint8 RGBA, so the pixels equal the file's own RGBA bit for bit."""
    if mask is None:
        return arrays
    if not isinstance(mask, torch.Tensor) or mask.ndim not in (2, 3):
        shape = tuple(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise ValueError(f"{input_name}: expected a MASK tensor [batch, height, width], got {shape}")
    m = mask.detach().to("cpu", torch.float32).numpy()
    m = m[None] if m.ndim == 2 else m
    if m.shape[0] != 1 and m.shape[0] < len(arrays):
        raise ValueError(f"{input_name}: {m.shape[0]} masks for {len(arrays)} images")
    out = []
    for i, rgb in enumerate(arrays):
        one = m[i if m.shape[0] > 1 else 0]
        if one.shape != rgb.shape[:2]:
            if not one.any():  # the no-alpha placeholder
                out.append(rgb)
                continue
            raise ValueError(f"{input_name}: mask {one.shape[1]}x{one.shape[0]} does not match the image "
                             f"{rgb.shape[1]}x{rgb.shape[0]}")
        if not np.isfinite(one).all():
            raise ValueError(f"{input_name}: the mask contains NaN or infinite values")
        alpha = 1.0 - np.clip(one, 0.0, 1.0)
        colour = rgb[:, :, :3] if rgb.shape[2] >= 3 else np.repeat(rgb[:, :, :1], 3, axis=2)
        c8, a8 = _u8_exact(colour), _u8_exact(alpha)
        if c8 is not None and a8 is not None:
            out.append(np.ascontiguousarray(np.dstack([c8, a8])))
        else:
            out.append(np.ascontiguousarray(np.dstack([colour, alpha]).astype(np.float32)))
    return out
