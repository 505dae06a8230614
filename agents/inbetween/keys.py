"""Key indices and keyframe checks: every bad input is a one-line error naming the input."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class InbetweenInputError(ValueError):
    """A bad input to the imputer (the message starts with the input's name)."""


def even_indices(n_keys: int, length: int) -> list[int]:
    """n_keys indices spread evenly over 0..length-1, first and last frame included."""
    if n_keys < 2:
        raise InbetweenInputError(f"keyframes: at least two keys are needed, got {n_keys}")
    if length < n_keys:
        raise InbetweenInputError(f"length: {length} frames cannot hold {n_keys} distinct keys")
    return [round(i * (length - 1) / (n_keys - 1)) for i in range(n_keys)]


def _parse_tokens(spec: str) -> list[int]:
    out = []
    for token in spec.replace(";", ",").split(","):
        token = token.strip()
        if not token:
            raise InbetweenInputError(f"key_indices: empty entry in {spec!r} (write e.g. \"0,6,14,24\")")
        try:
            out.append(int(token))
        except ValueError:
            raise InbetweenInputError(f"key_indices: {token!r} is not a whole frame number") from None
    return out


def parse_key_indices(spec: str, n_keys: int, length: int, max_length: int) -> list[int]:
    """Frame index of each key. spec "" or "even" spreads the keys evenly; otherwise a comma list
    such as "0,6,14,24", strictly increasing, one per key, inside 0..length-1."""
    if isinstance(length, bool) or not isinstance(length, int):
        raise InbetweenInputError(f"length: expected a whole number of frames, got {length!r}")
    if length < 2:
        raise InbetweenInputError(f"length: at least 2 frames are needed, got {length}")
    if length > max_length:
        raise InbetweenInputError(f"length: {length} frames is over the cap of {max_length}")
    if n_keys < 2:
        raise InbetweenInputError(f"keyframes: at least two keys are needed, got {n_keys}")
    if not isinstance(spec, str):
        raise InbetweenInputError(f"key_indices: expected text like \"0,6,14,24\", got {type(spec).__name__}")
    if spec.strip().lower() in ("", "even"):
        return even_indices(n_keys, length)
    idx = _parse_tokens(spec)
    if len(idx) != n_keys:
        raise InbetweenInputError(f"key_indices: {len(idx)} indices given for {n_keys} keyframes")
    for i, v in enumerate(idx):
        if v < 0:
            raise InbetweenInputError(f"key_indices: index {v} is negative")
        if i and v == idx[i - 1]:
            raise InbetweenInputError(f"key_indices: index {v} appears twice")
        if i and v < idx[i - 1]:
            raise InbetweenInputError(f"key_indices: not increasing ({idx[i - 1]} before {v})")
    if idx[-1] >= length:
        raise InbetweenInputError(
            f"length: {length} frames is shorter than the keys' span (the last key is at frame {idx[-1]})")
    return idx


def check_frames(frames: Sequence[np.ndarray], name: str, max_side: int) -> tuple[int, int]:
    """Each frame (H, W, 3) float32 0..1, finite, all one size no longer than max_side; returns (H, W)."""
    if len(frames) == 0:
        raise InbetweenInputError(f"{name}: no frames given")
    size: tuple[int, int] | None = None
    for i, f in enumerate(frames):
        if not isinstance(f, np.ndarray) or f.ndim != 3 or f.shape[2] != 3:
            shape = getattr(f, "shape", type(f).__name__)
            raise InbetweenInputError(f"{name}: frame {i} must be (height, width, 3) RGB, got {shape}")
        if f.dtype != np.float32:
            raise InbetweenInputError(f"{name}: frame {i} must be float32 0..1, got {f.dtype}")
        if max(f.shape[:2]) > max_side:
            raise InbetweenInputError(f"{name}: frame {i} is {f.shape[1]}x{f.shape[0]}, over the {max_side} px cap")
        if min(f.shape[:2]) < 16:
            raise InbetweenInputError(f"{name}: frame {i} is {f.shape[1]}x{f.shape[0]}, under 16 px")
        if size is None:
            size = (f.shape[0], f.shape[1])
        elif (f.shape[0], f.shape[1]) != size:
            raise InbetweenInputError(
                f"{name}: frame {i} is {f.shape[1]}x{f.shape[0]} but frame 0 is {size[1]}x{size[0]}: "
                "all frames must have one size (resize them first)")
        if not np.isfinite(f).all() or f.min() < 0.0 or f.max() > 1.0:
            raise InbetweenInputError(f"{name}: frame {i} has pixels outside 0..1 or not finite")
    return size or (0, 0)


def composite_on_white(frames: Sequence[np.ndarray], masks: Sequence[np.ndarray]) -> list[np.ndarray]:
    """ComfyUI MASK convention (LoadImage: mask = 1 - alpha): each key composited on white paper."""
    if len(masks) != len(frames):
        raise InbetweenInputError(f"mask: {len(masks)} masks for {len(frames)} keyframes (give one per key)")
    out = []
    for i, (f, m) in enumerate(zip(frames, masks, strict=True)):
        if m.shape != f.shape[:2]:
            raise InbetweenInputError(f"mask: mask {i} is {m.shape[1]}x{m.shape[0]}, its key {f.shape[1]}x{f.shape[0]}")
        if not np.isfinite(m).all() or m.min() < 0.0 or m.max() > 1.0:
            raise InbetweenInputError(f"mask: mask {i} has values outside 0..1 or not finite")
        alpha = (1.0 - m.astype(np.float32))[:, :, None]
        out.append((f * alpha + (1.0 - alpha)).astype(np.float32))
    return out
