"""The keyframe imputer: keys at their indices kept bit-identical, in-betweens made gap by gap and
handed out in chunks (a long request holds one chunk and one gap's flows, never the sequence)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from .config import InbetweenConfig, default_config
from .flow import FLOW_METHODS
from .ink import KeyInk, key_ink
from .keys import InbetweenInputError, check_frames, composite_on_white, parse_key_indices
from .modes import FIELDS, MODES, GapKeys, gap_frames


@dataclass(frozen=True)
class Request:
    """A checked imputation request (build it with prepare())."""

    keys: list[np.ndarray]
    indices: list[int]
    length: int
    mode: str
    flow_method: str
    flow_field: str
    config: InbetweenConfig
    inks: list[KeyInk]
    external: Sequence[np.ndarray] | None = None
    size: tuple[int, int] = (0, 0)
    key_at: dict[int, int] = field(default_factory=dict)


def prepare(keys: Sequence[np.ndarray], key_indices: str | Sequence[int], length: int, mode: str = "line_aware", *,
            flow_method: str = "dis", field: str = "distance", masks: Sequence[np.ndarray] | None = None,
            external: Sequence[np.ndarray] | None = None, config: InbetweenConfig | None = None) -> Request:
    """Check every input (one-line errors naming it) before any work is done."""
    cfg = config or default_config()
    if mode not in MODES:
        raise InbetweenInputError(f"mode: {mode!r} is not one of {', '.join(MODES)}")
    if flow_method not in FLOW_METHODS:
        raise InbetweenInputError(f"flow_method: {flow_method!r} is not one of {', '.join(FLOW_METHODS)}")
    if field not in FIELDS:
        raise InbetweenInputError(f"field: {field!r} is not one of {', '.join(FIELDS)}")
    max_side = int(cfg.limits["max_side"])
    size = check_frames(list(keys), "keyframes", max_side)
    keys = composite_on_white(keys, masks) if masks is not None else list(keys)
    if isinstance(key_indices, str):
        indices = parse_key_indices(key_indices, len(keys), length, int(cfg.limits["max_length"]))
    else:
        indices = parse_key_indices(",".join(str(int(i)) for i in key_indices), len(keys), length,
                                    int(cfg.limits["max_length"]))
    inks = [key_ink(k, cfg.ink) for k in keys]
    min_ink = float(cfg.ink["blank_ink_share"])
    for i, ink in enumerate(inks):
        if ink.ink.mean() <= min_ink:
            raise InbetweenInputError(f"keyframes: key {i} (frame {indices[i]}) is blank: no ink found")
    if mode == "external":
        if external is None:
            raise InbetweenInputError("frames: the external mode needs the upstream interpolator's frames")
        if len(external) != length:
            raise InbetweenInputError(f"frames: {len(external)} upstream frames but length is {length}")
        if check_frames(list(external), "frames", max_side) != size:
            raise InbetweenInputError(f"frames: upstream frames are not the keys' size {size[1]}x{size[0]}")
    return Request(list(keys), indices, length, mode, flow_method, field, cfg, inks, external, size,
                   {f: j for j, f in enumerate(indices)})


def keep_mask(indices: Sequence[int], length: int, soft: bool, config: InbetweenConfig | None = None) -> np.ndarray:
    """Per frame 0 (a key: keep) .. 1 (free). Hard: every in-between 1. Soft: soft_min next to a key
    growing to soft_max at the middle of its gap ((d / half gap) ** soft_gamma); frames outside the
    keys' span (held copies) get soft_max."""
    cfg = (config or default_config()).mask
    lo, hi, gamma = float(cfg["soft_min"]), float(cfg["soft_max"]), float(cfg["soft_gamma"])
    mask = np.full(length, hi if soft else 1.0, np.float32)
    for a, b in zip(indices[:-1], indices[1:], strict=True):
        half = (b - a) / 2.0
        for f in range(a + 1, b):
            d = min(f - a, b - f)
            mask[f] = lo + (hi - lo) * (d / half) ** gamma if soft else 1.0
    mask[list(indices)] = 0.0
    return mask


def _frame_source(req: Request) -> Iterator[np.ndarray]:
    """Every frame in order (keys as the very arrays given)."""
    first, last = req.indices[0], req.indices[-1]
    for _ in range(first):
        yield req.keys[0].copy()
    for j, (a, b) in enumerate(zip(req.indices[:-1], req.indices[1:], strict=True)):
        yield req.keys[j]
        if req.mode == "external":
            ext = req.external or []
            for f in range(a + 1, b):
                yield np.asarray(ext[f], np.float32)
            continue
        gap = GapKeys(req.keys[j], req.keys[j + 1], req.inks[j], req.inks[j + 1])
        times = [(f - a) / (b - a) for f in range(a + 1, b)]
        yield from gap_frames(req.mode, gap, times, req.config, req.flow_method, req.flow_field)
    yield req.keys[-1]
    for _ in range(last + 1, req.length):
        yield req.keys[-1].copy()


def iter_chunks(req: Request) -> Iterator[tuple[int, np.ndarray]]:
    """(first frame index, [n, H, W, 3] float32) with n <= limits.chunk_frames, in order. Keys are
    checked bit-identical to the given keys as each chunk is filled. The chunk is one reused buffer:
    copy it out before asking for the next (memory stays one chunk whatever the length)."""
    n = int(req.config.limits["chunk_frames"])
    h, w = req.size
    buf = np.empty((n, h, w, 3), np.float32)
    start, fill = 0, 0
    for index, frame in enumerate(_frame_source(req)):
        buf[fill] = frame
        if index in req.key_at and not np.array_equal(buf[fill], req.keys[req.key_at[index]]):
            raise AssertionError(f"key at frame {index} is not bit-identical to its keyframe")
        fill += 1
        if fill == n:
            yield start, buf[:fill]
            start, fill = start + fill, 0
    if fill:
        yield start, buf[:fill]


def impute(req: Request) -> np.ndarray:
    """The whole sequence [length, H, W, 3] (tests and benchmarks; nodes consume iter_chunks)."""
    out = np.empty((req.length, req.size[0], req.size[1], 3), np.float32)
    for start, chunk in iter_chunks(req):
        out[start:start + len(chunk)] = chunk
    return out
