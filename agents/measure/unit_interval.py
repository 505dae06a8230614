"""clip01: the one clip to 0..1 every family uses (NaN counts as 0: no evidence; +-inf clip to 1 / 0)."""

from __future__ import annotations


def clip01(x: float) -> float:
    """x clipped to [0, 1] as a float; NaN gives 0.0, +inf 1.0, -inf 0.0."""
    if x != x:  # NaN: every comparison below would be False and let it through
        return 0.0
    return 0.0 if x < 0.0 else 1.0 if x > 1.0 else float(x)
