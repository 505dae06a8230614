"""The Visual Analyst's labelled synthetic drawings: a TUNING set (seeds TUNING_SEEDS) on which the
measure.toml [rough_scores] ramps and line-quality weights were chosen, and a HELD-OUT set (other
seeds, other sizes) that tests and bench/analyst_confusion.py score and nothing was tuned on.

Each item is (name, kind, label, image): label "clean" (should be graded clean) or "rough" (should
not); kind names the rendering (tests/host/drawings.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from . import drawings as D

TUNING_SEEDS = range(0, 24)
HELD_OUT_SEEDS = range(1000, 1024)

Maker = Callable[[list[np.ndarray], int, np.random.Generator, int], np.ndarray]


def _clean(p: list[np.ndarray], seed: int, rng: np.random.Generator, size: int) -> np.ndarray:
    return D.render(p, size, width=rng.uniform(2.0, 4.5) * size / 512, seed=seed)


def _taper(p: list[np.ndarray], seed: int, rng: np.random.Generator, size: int) -> np.ndarray:
    return D.render(p, size, width=rng.uniform(2.5, 4.5) * size / 512, taper=True, seed=seed)


def _fine_pen(p: list[np.ndarray], seed: int, rng: np.random.Generator, size: int) -> np.ndarray:
    strands = D.with_strands(p, seed, size)
    return D.render(strands, size, width=rng.uniform(1.3, 2.0) * size / 512, level=rng.uniform(0.6, 0.9),
                    taper=True, seed=seed)


def _steady_hand(p: list[np.ndarray], seed: int, rng: np.random.Generator, size: int) -> np.ndarray:
    k = size / 512  # an ordinary hand line: a little wobble, clean
    return D.render(D.wobbly(p, seed, rng.uniform(2.0, 3.0) * k, 24.0 * k), size, width=rng.uniform(2.5, 5.0) * k,
                    seed=seed)


def _bold_pen(p: list[np.ndarray], seed: int, rng: np.random.Generator, size: int) -> np.ndarray:
    k = size / 512  # a bold felt pen, clean
    return D.render(D.wobbly(p, seed, 0.8 * k, 30.0 * k), size, width=rng.uniform(5.0, 8.0) * k, seed=seed)


def _overdrawn(p: list[np.ndarray], seed: int, rng: np.random.Generator, size: int) -> np.ndarray:
    k = size / 512
    return D.render(D.duplicated(p, seed, 1.0 * k, 4.0 * k), size, width=rng.uniform(1.8, 2.4) * k, seed=seed)


def _graphite(p: list[np.ndarray], seed: int, rng: np.random.Generator, size: int) -> np.ndarray:
    return D.render(p, size, width=rng.uniform(2.0, 4.0) * size / 512, level=rng.uniform(0.35, 0.6),
                    graphite=True, seed=seed)


def _hatched(p: list[np.ndarray], seed: int, rng: np.random.Generator, size: int) -> np.ndarray:
    return D.render(D.with_hatching(p, seed, size, int(rng.integers(10, 18))), size,
                    width=rng.uniform(2.0, 3.5) * size / 512, seed=seed)


def _wobbly(p: list[np.ndarray], seed: int, rng: np.random.Generator, size: int) -> np.ndarray:
    k = size / 512
    return D.render(D.wobbly(p, seed, rng.uniform(5.0, 7.0) * k, 24.0 * k), size, width=rng.uniform(2.0, 4.0) * k,
                    seed=seed)


def _marker(p: list[np.ndarray], seed: int, rng: np.random.Generator, size: int) -> np.ndarray:
    k = size / 512
    return D.render(D.wobbly(p, seed, 1.5 * k, 30.0 * k), size, width=rng.uniform(10.0, 14.0) * k, seed=seed)


def _broken(p: list[np.ndarray], seed: int, rng: np.random.Generator, size: int) -> np.ndarray:
    k = size / 512
    return D.render(D.broken(p, seed, 18.0 * k, 6.0 * k), size, width=rng.uniform(2.0, 4.0) * k, seed=seed)


KINDS: dict[str, tuple[str, Maker]] = {
    "clean": ("clean", _clean), "taper": ("clean", _taper), "fine_pen": ("clean", _fine_pen),
    "steady_hand": ("clean", _steady_hand), "bold_pen": ("clean", _bold_pen),
    "overdrawn": ("rough", _overdrawn), "graphite": ("rough", _graphite), "hatched": ("rough", _hatched),
    "wobbly": ("rough", _wobbly), "marker": ("rough", _marker), "broken": ("rough", _broken),
}


def labelled(seeds: range, sizes: tuple[int, ...] = (512,)) -> Iterator[tuple[str, str, str, np.ndarray]]:
    """Every kind for every seed (size cycling through `sizes`): (name, kind, label, image)."""
    for i, seed in enumerate(seeds):
        size = sizes[i % len(sizes)]
        paths = D.clean_paths(seed, size)
        for kind, (label, make) in KINDS.items():
            rng = np.random.default_rng(seed * 97 + len(kind))
            yield f"{kind}-{seed}@{size}", kind, label, make(paths, seed, rng, size)


def tuning_set() -> Iterator[tuple[str, str, str, np.ndarray]]:
    return labelled(TUNING_SEEDS)


def held_out_set() -> Iterator[tuple[str, str, str, np.ndarray]]:
    return labelled(HELD_OUT_SEEDS, (512, 768))
