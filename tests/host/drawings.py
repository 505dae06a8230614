"""Synthetic drawings made by code: clean line drawings and their rough-pencil variants.

A drawing is a list of stroke paths (N x 2 float arrays, pixel coordinates on a size x size sheet)
rendered with round caps at 4x supersampling and area-downscaled, so strokes are anti-aliased like
scans. The variants are the metamorphic relations of the Visual Analyst's tests and the rendering
of its synthetic tuning / held-out sets (tests/host/drawing_sets.py):

- duplicated(): every stroke drawn again 1-4 px beside itself, slightly turned (overdrawing)
- wobbly(): every stroke re-drawn with hand wobble (a smooth random offset along its normal)
- with_hatching(): a patch of short parallel strokes added
- render(graphite=True): light grey strokes deposited only on the paper's tooth, on grainy paper
- render(taper=True): stroke width falls to a point over the last part of each open stroke
- broken(): every stroke cut into dashes with gaps
"""

from __future__ import annotations

import cv2
import numpy as np

SS = 4  # supersampling factor


def _ellipse(
    c: tuple[float, float], r: tuple[float, float], a0: float, a1: float, rot: float, n: int = 160
) -> np.ndarray:
    t = np.linspace(a0, a1, n)
    x, y = r[0] * np.cos(t), r[1] * np.sin(t)
    cr, sr = np.cos(rot), np.sin(rot)
    return np.stack([c[0] + cr * x - sr * y, c[1] + sr * x + cr * y], axis=1)


def _bezier(p: np.ndarray, n: int = 120) -> np.ndarray:
    t = np.linspace(0.0, 1.0, n)[:, None]
    return ((1 - t) ** 3 * p[0] + 3 * (1 - t) ** 2 * t * p[1] + 3 * (1 - t) * t ** 2 * p[2] + t ** 3 * p[3])


def clean_paths(seed: int, size: int = 512) -> list[np.ndarray]:
    """A random object: a body outline, a few inner arcs and open curves, all smooth."""
    rng = np.random.default_rng(seed)
    s = float(size)
    cx, cy = s * rng.uniform(0.42, 0.58), s * rng.uniform(0.42, 0.58)
    rx, ry = s * rng.uniform(0.22, 0.32), s * rng.uniform(0.18, 0.3)
    paths = [_ellipse((cx, cy), (rx, ry), 0.0, 2 * np.pi, rng.uniform(0, np.pi), 240)]
    for _ in range(int(rng.integers(2, 5))):  # inner arcs
        a0 = rng.uniform(0, 2 * np.pi)
        paths.append(_ellipse((cx + rng.uniform(-0.3, 0.3) * rx, cy + rng.uniform(-0.3, 0.3) * ry),
                              (rx * rng.uniform(0.2, 0.5), ry * rng.uniform(0.2, 0.5)), a0,
                              a0 + rng.uniform(1.5, 3.5), rng.uniform(0, np.pi), 120))
    for _ in range(int(rng.integers(2, 4))):  # open curves leaving the body (legs, handles, hair)
        a = rng.uniform(0, 2 * np.pi)
        start = np.array([cx + rx * np.cos(a), cy + ry * np.sin(a)])
        d = np.array([np.cos(a), np.sin(a)]) * s * rng.uniform(0.1, 0.18)
        bend = np.array([-d[1], d[0]]) * rng.uniform(-0.4, 0.4)
        pts = np.stack([start, start + 0.33 * d + bend, start + 0.66 * d + bend, start + d])
        paths.append(_bezier(pts))
    return [np.clip(p, 0.04 * s, 0.96 * s) for p in paths]


def _closed(p: np.ndarray) -> bool:
    return bool(np.hypot(*(p[0] - p[-1])) < 1.0)


def render(
    paths: list[np.ndarray], size: int = 512, width: float = 3.0, level: float = 1.0, taper: bool = False,
    graphite: bool = False, seed: int = 0,
) -> np.ndarray:
    """Paths -> (size, size) uint8 grey drawing (dark strokes on white paper)."""
    rng = np.random.default_rng(seed + 7919)
    big = np.zeros((size * SS, size * SS), np.uint8)
    for p in paths:
        pts = p * SS
        seg = np.hypot(*np.diff(pts, axis=0).T)
        step = max(1.0, width * SS / 6.0)
        n = max(2, int(seg.sum() / step))
        arc = np.concatenate([[0.0], np.cumsum(seg)])
        t = np.linspace(0.0, arc[-1], n)
        xs, ys = np.interp(t, arc, pts[:, 0]), np.interp(t, arc, pts[:, 1])
        frac = t / max(arc[-1], 1e-6)
        radius = np.full(n, width * SS / 2.0)
        if taper and not _closed(p):
            edge = np.minimum(frac, 1.0 - frac) / 0.2  # the last 20 % at each end thins to a point
            radius *= np.clip(edge, 0.08, 1.0)
        for x, y, r in zip(xs, ys, radius, strict=True):
            cv2.circle(big, (int(round(x)), int(round(y))), max(1, int(round(r))), 255, -1, lineType=cv2.LINE_8)
    cover = cv2.resize(big, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    if graphite:
        tooth = cv2.GaussianBlur(rng.random((size, size)).astype(np.float32), (0, 0), 0.7)
        tooth = (tooth - tooth.mean()) / (tooth.std() + 1e-6)
        deposit = np.clip(0.5 + 0.45 * tooth, 0.0, 1.0)  # graphite sits on the paper's tooth
        ink = cover * level * deposit
        paper = 1.0 - 0.03 * np.clip(tooth, -3, 3) / 3.0 - 0.02
    else:
        ink = cover * level
        paper = np.ones_like(cover)
    out = paper * (1.0 - ink)
    return np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8)


def _normal(p: np.ndarray) -> np.ndarray:
    d = np.gradient(p, axis=0)
    d /= np.maximum(np.hypot(d[:, 0], d[:, 1]), 1e-9)[:, None]
    return np.stack([-d[:, 1], d[:, 0]], axis=1)


def duplicated(paths: list[np.ndarray], seed: int, lo: float = 1.0, hi: float = 4.0) -> list[np.ndarray]:
    """Each stroke plus a second pass beside it, its offset swinging between lo and hi px along it."""
    rng = np.random.default_rng(seed + 31)
    out = list(paths)
    for p in paths:
        t = np.linspace(0.0, 1.0, len(p))
        swing = 0.5 + 0.5 * np.sin(2 * np.pi * (rng.uniform(1.0, 2.5) * t + rng.uniform(0, 1)))
        off = (lo + (hi - lo) * swing) * rng.choice([-1.0, 1.0])
        out.append(p + _normal(p) * off[:, None])
    return out


def wobbly(paths: list[np.ndarray], seed: int, amp: float = 2.0, wavelength: float = 24.0) -> list[np.ndarray]:
    """Each stroke re-drawn with hand wobble: a smooth random normal offset of about amp px."""
    rng = np.random.default_rng(seed + 57)
    out = []
    for p in paths:
        arc = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(p, axis=0).T))])
        knots = np.arange(0.0, arc[-1] + wavelength, wavelength / 2.0)
        vals = rng.normal(0.0, amp, knots.size)
        off = np.interp(arc, knots, vals)
        off = np.convolve(np.pad(off, 3, mode="edge"), np.ones(7) / 7.0, mode="valid")
        out.append(p + _normal(p) * off[:, None])
    return out


def with_hatching(paths: list[np.ndarray], seed: int, size: int = 512, count: int = 14) -> list[np.ndarray]:
    """Add a patch of `count` short parallel strokes (hatching) inside the drawing."""
    rng = np.random.default_rng(seed + 83)
    s = float(size)
    c = np.array([s * rng.uniform(0.4, 0.6), s * rng.uniform(0.4, 0.6)])
    ang = rng.uniform(0, np.pi)
    u, v = np.array([np.cos(ang), np.sin(ang)]), np.array([-np.sin(ang), np.cos(ang)])
    length, gap = s * 0.07, s * 0.016
    out = list(paths)
    for i in range(count):
        mid = c + v * (i - count / 2.0) * gap + u * rng.uniform(-0.1, 0.1) * length
        ln = length * rng.uniform(0.8, 1.1)
        out.append(np.linspace(mid - u * ln / 2, mid + u * ln / 2, 20))
    return out


def broken(paths: list[np.ndarray], seed: int, dash: float = 18.0, gap: float = 6.0) -> list[np.ndarray]:
    """Each stroke cut into dashes of ~dash px with ~gap px between them."""
    rng = np.random.default_rng(seed + 101)
    out = []
    for p in paths:
        arc = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(p, axis=0).T))])
        pos = 0.0
        while pos < arc[-1]:
            ln = dash * rng.uniform(0.6, 1.4)
            sel = (arc >= pos) & (arc <= pos + ln)
            if sel.sum() >= 2:
                out.append(p[sel])
            pos += ln + gap * rng.uniform(0.7, 1.3)
    return out


def with_strands(paths: list[np.ndarray], seed: int, size: int = 512, count: int = 5) -> list[np.ndarray]:
    """Add a bundle of long curves side by side, closer at one end (hair strands, folds): clean detail."""
    rng = np.random.default_rng(seed + 211)
    s = float(size)
    start = np.array([s * rng.uniform(0.3, 0.5), s * rng.uniform(0.3, 0.5)])
    d = np.array([rng.uniform(0.25, 0.35), rng.uniform(-0.1, 0.2)]) * s
    nrm = np.array([-d[1], d[0]]) / np.hypot(*d)
    out = list(paths)
    for i in range(count):
        spread = nrm * (i - count / 2.0) * rng.uniform(7.0, 12.0)
        pts = np.stack([start + spread * 0.3, start + 0.33 * d + spread * 0.7, start + 0.66 * d + spread,
                        start + d + spread * 1.2])
        out.append(np.clip(_bezier(pts), 0.04 * s, 0.96 * s))
    return out
