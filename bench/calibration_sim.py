"""The calibration benchmark's simulator: real signal vectors, hidden pass-probability surfaces, the oracle.

Contexts come from running the Visual Analyst and Reference Compare on the repository's fixture
sketches and references and on augmentations of the sketches (rescaled onto a bigger canvas or
cropped in, flipped, blurred, thickened, thinned, speckled, partly erased, faint guide lines
added, two sketches side by side). A fresh pair is a measured context with its continuous signals
nudged a little, so 1,000 fresh pairs need not mean 1,000 image measurements.

Surface A carries the seed's interactions: high cfg2 with high ip2 hurts, the best cfg1 moves with
S, over-locked Union on large complex objects hurts, and denoise2 has a best point that moves with
the style distance. Surface B ("misspecified") has cliffs and a product form the fit was not
designed for. Outcomes are Bernoulli draws from the surface, then flipped with a small probability
(label noise).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from agents.measure.analysis_types import ReferenceReport, VisualAnalysis
from agents.measure.imaging import load_image
from agents.measure.reference_compare import compare, measure_image
from agents.measure.visual_analyst import analyse

REPO = Path(__file__).resolve().parents[1]
VALUE_ORDER = ("cfg1", "cfg2", "denoise1", "denoise2", "union_strength", "pose_strength", "ip1_weight", "ip2_weight")
LABEL_FLIP = 0.05
Context = tuple[VisualAnalysis, ReferenceReport]


def _grey(img: np.ndarray) -> np.ndarray:
    g = img[..., :3].mean(axis=2) if img.ndim == 3 else img
    if img.ndim == 3 and img.shape[2] == 4:  # transparent = white paper
        a = img[..., 3] / 255.0
        g = g * a + 255 * (1 - a)
    return np.clip(g, 0, 255).astype(np.uint8)


def augment(g: np.ndarray, kind: str, rng: np.random.Generator, other: np.ndarray | None = None) -> np.ndarray:
    h, w = g.shape
    if kind == "small":
        f = rng.uniform(1.6, 2.6)
        canvas = np.full((int(h * f), int(w * f)), 255, np.uint8)
        y, x = rng.integers(0, canvas.shape[0] - h), rng.integers(0, canvas.shape[1] - w)
        canvas[y:y + h, x:x + w] = g
        return canvas
    if kind == "crop":
        f = rng.uniform(0.6, 0.8)
        ch, cw = int(h * f), int(w * f)
        y, x = (h - ch) // 2, (w - cw) // 2
        return cv2.resize(g[y:y + ch, x:x + cw], (w, h), interpolation=cv2.INTER_AREA)
    if kind == "flip":
        return g[:, ::-1].copy()
    if kind == "blur":
        return cv2.GaussianBlur(g, (0, 0), rng.uniform(1.0, 2.5))
    if kind == "thick":
        return cv2.erode(g, np.ones((3, 3), np.uint8), iterations=int(rng.integers(1, 3)))
    if kind == "thin":
        return cv2.dilate(g, np.ones((2, 2), np.uint8))
    if kind == "speckle":
        out = g.copy()
        n = int(h * w * rng.uniform(0.002, 0.01))
        out[rng.integers(0, h, n), rng.integers(0, w, n)] = 0
        return out
    if kind == "erase":
        out = g.copy()
        for _ in range(int(rng.integers(20, 60))):
            y, x = rng.integers(0, h), rng.integers(0, w)
            out[y:y + 6, x:x + 6] = 255
        return out
    if kind == "guides":
        out = g.copy()
        for _ in range(int(rng.integers(4, 12))):
            p1 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
            p2 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
            cv2.line(out, p1, p2, int(rng.integers(150, 200)), 1)
        return out
    if kind == "pair" and other is not None:
        o = cv2.resize(other, (int(other.shape[1] * h / other.shape[0]), h))
        return np.concatenate([g, np.full((h, 24), 255, np.uint8), o], axis=1)
    return g


KINDS = ("none", "small", "crop", "flip", "blur", "thick", "thin", "speckle", "erase", "guides", "pair")


def measured_contexts(per_sketch: int, seed: int) -> list[Context]:
    """Every fixture sketch and `per_sketch` random augmentations of it, each against every fixture reference."""
    rng = np.random.default_rng(seed)
    sketches = [_grey(load_image(p)) for p in sorted((REPO / "tests/fixtures/sketches").glob("*.png"))]
    refs = [measure_image(load_image(p), p.name) for p in sorted((REPO / "tests/fixtures/references").glob("*"))
            if p.suffix.lower() in {".png", ".jpg", ".jpeg"}]
    out: list[Context] = []
    for i, g in enumerate(sketches):
        kinds = ["none"] + [str(k) for k in rng.choice(KINDS[1:], size=per_sketch)]
        for j, kind in enumerate(kinds):
            other = sketches[(i + 1 + j) % len(sketches)]
            img = augment(g, kind, rng, other)
            if kind != "none" and rng.random() < 0.5:  # a second augmentation now and then
                img = augment(img, str(rng.choice(KINDS[1:10])), rng)
            rgb = np.repeat(img[..., None], 3, axis=2)
            a = analyse(rgb, f"sketch{i}_{kind}")
            for ref in refs:
                out.append((a, compare(rgb, ref)))
    return out


def nudge(ctx: Context, rng: np.random.Generator, sd: float = 0.05) -> Context:
    """A fresh pair near a measured one: its continuous signals moved by a little Gaussian noise."""
    a, r = ctx

    def mv(x: float) -> float:
        return float(np.clip(x + rng.normal(0, sd), 0, 1))

    a2 = dataclasses.replace(a, line_quality_score=mv(a.line_quality_score), complexity_score=mv(a.complexity_score),
                             subject_scale=mv(a.subject_scale), construction_lines=mv(a.construction_lines),
                             broken_lines=mv(a.broken_lines), anatomy_risk_score=mv(a.anatomy_risk_score))
    r2 = dataclasses.replace(r, similarity=mv(r.similarity), conflict_penalty=mv(r.conflict_penalty),
                             style_distance=mv(r.style_distance)) if r.present else r
    return a2, r2


# ---- hidden surfaces: ctx columns S, R, D, P, complexity, scale; vals columns VALUE_ORDER -------------------------
def _sig(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def surface_a(ctx: np.ndarray, v: np.ndarray) -> np.ndarray:
    S, R, D, P, cx, sc = (ctx[:, i] for i in range(6))
    c1, c2, d1, d2, u, po, ip1, ip2 = (v[:, i] for i in range(8))
    best_c1 = 7.3 + 1.3 * S                                    # the best CFG moves with S
    z = 1.2 - 1.0 * (1 - S) - 0.5 * P
    z -= 1.4 * (c1 - best_c1) ** 2
    z -= 9.0 * np.maximum(0, c2 - 7.2) / 1.4 * np.maximum(0, ip2 - 0.15) / 0.35 * 0.35  # high cfg2 with high ip2
    z -= 16.0 * np.maximum(0, u - 0.55) * np.clip((sc - 0.45) / 0.4, 0, 1) * cx  # over-locked Union, large complex
    z += 1.2 * (u - 0.6) * S                                   # clean lines like a firm lock
    z -= 30.0 * (d2 - (0.22 + 0.15 * D)) ** 2                  # best KS2 denoise moves with style distance
    z -= 6.0 * (d1 - 0.7) ** 2
    z += 0.8 * ip1 * R - 0.6 * ip1 * (1 - R)
    z -= 1.5 * np.maximum(0, po - (0.3 + 0.6 * P)) ** 2
    return _sig(z)


def surface_b(ctx: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Misspecified: multiplicative cliffs and a wave the fitted features cannot represent."""
    S, R, D, P, cx, sc = (ctx[:, i] for i in range(6))
    c1, c2, d1, d2, u, po, ip1, ip2 = (v[:, i] for i in range(8))
    p = 0.85 * np.where((c1 > 8.6) & (S < 0.55), 0.55, 1.0)
    p = p * np.where((ip2 > 0.3) & (c2 > 7.5), 0.6, 1.0)
    p = p * np.where((u > 0.7) & (sc > 0.55), 0.7, 1.0)
    p = p * (0.85 + 0.15 * np.cos(9.0 * (d2 - 0.3)))
    p = p * (0.75 + 0.25 * np.sqrt(np.clip(R * ip1 + (1 - R) * (1 - ip1), 0, 1)))
    p = p * (0.9 + 0.1 * S - 0.1 * P * (po < 0.4))
    return np.clip(p, 0.01, 0.99)


SURFACES: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {"A (seed interactions)": surface_a,
                                                                     "B (misspecified)": surface_b}


def draw_outcomes(p: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    y = (rng.random(len(p)) < p).astype(float)
    flip = rng.random(len(p)) < LABEL_FLIP
    return np.where(flip, 1 - y, y)


def oracle_values(ctx: np.ndarray, surface: Callable[[np.ndarray, np.ndarray], np.ndarray],
                  rng: np.random.Generator, samples: int, hard: dict[str, float], limits: dict) -> np.ndarray:
    """The best expected pass probability per context over values that satisfy the hard rules (random search
    over the feasible set: `samples` draws per context, so a slight underestimate of the true optimum)."""
    n = len(ctx)
    best = np.zeros(n)
    g_lo, g_hi = limits["cfg"]
    for i in range(n):
        c = np.repeat(ctx[i:i + 1], samples, axis=0)
        v = np.empty((samples, 8))
        v[:, 0] = rng.uniform(g_lo, g_hi, samples)
        v[:, 1] = rng.uniform(g_lo, v[:, 0])
        v[:, 2] = rng.uniform(0.3, 1.0, samples)
        v[:, 3] = rng.uniform(0.0, hard["denoise2_max"], samples)
        v[:, 4] = rng.uniform(0.0, 1.2, samples)
        v[:, 5] = rng.uniform(0.0, 1.2, samples)
        v[:, 6] = rng.uniform(hard["ip_gap"], 1.0, samples)
        v[:, 7] = rng.uniform(0, 1, samples) * np.minimum(hard["ip2_abs_max"], v[:, 6] - hard["ip_gap"])
        cap = np.where(v[:, 7] > hard["ip2_cap2_above"], hard["ip2_cap2_cfg2"],
                       np.where(v[:, 7] > hard["ip2_cap1_above"], hard["ip2_cap1_cfg2"], g_hi))
        v[:, 1] = np.minimum(v[:, 1], cap)
        best[i] = max(best[i], float(surface(c, v).max()))
    return best
