"""Attack/release smoothing on the video time base. The state starts at the first value, so frame 0
reacts like any other frame (no ramp up from zero)."""

from __future__ import annotations

import numpy as np


def coefficient(tau_s: float, fps: float) -> float:
    """One-pole coefficient for a time constant; 0 s -> 1 (instant)."""
    return 1.0 if tau_s <= 0 else float(1.0 - np.exp(-1.0 / (tau_s * fps)))


def attack_release(x: np.ndarray, attack_s: float, release_s: float, fps: float) -> np.ndarray:
    """x [n] or [n, d] -> same shape; rises with the attack constant, falls with the release constant."""
    a_up, a_down = coefficient(attack_s, fps), coefficient(release_s, fps)
    arr = np.asarray(x, dtype=np.float64)
    if a_up == 1.0 and a_down == 1.0:
        return arr.copy()
    flat = arr.reshape(arr.shape[0], -1)
    out = np.empty_like(flat)
    y = flat[0].copy()
    for i in range(flat.shape[0]):
        v = flat[i]
        y += np.where(v > y, a_up, a_down) * (v - y)
        out[i] = y
    return out.reshape(arr.shape)
