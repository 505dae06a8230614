"""Per-frame report of an imputed sequence: chamfer distance to the keys around each frame, ink-area
ratio, grey (ghost) share, Line Quality broken/dotted, and which frames look unsafe."""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ..measure.line_quality import score_line_art
from .imputer import Request
from .ink import INK_PERCENTILE, PAPER_PERCENTILE, luma
from .metrics import InkField, chamfer, grey_share, ink_field


@dataclass
class FrameReport:
    index: int
    is_key: bool
    keep: float
    chamfer_prev_key: float
    chamfer_next_key: float
    chamfer_nearest_key: float
    ink_ratio: float  # ink area / mean ink area of the keys around it
    grey_share: float
    broken: float | None = None
    dotted: float | None = None
    unsafe: list[str] = field(default_factory=list)


@dataclass
class SequenceReport:
    mode: str
    key_indices: list[int]
    length: int
    frames: list[FrameReport]
    keys_exact: bool = True

    @property
    def unsafe_frames(self) -> list[int]:
        return [f.index for f in self.frames if f.unsafe]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["unsafe_frames"] = self.unsafe_frames
        between = [f for f in self.frames if not f.is_key]
        d["mean_chamfer_nearest_key"] = float(np.mean([f.chamfer_nearest_key for f in between])) if between else 0.0
        d["max_grey_share"] = max((f.grey_share for f in between), default=0.0)
        return d

    def summary(self) -> str:
        d = self.to_dict()
        lines = [f"{self.mode}: {self.length} frames, keys at {','.join(map(str, self.key_indices))} (exact)",
                 f"mean chamfer to nearest key {d['mean_chamfer_nearest_key']:.5f}, "
                 f"max grey share {d['max_grey_share']:.3f}"]
        unsafe = [f"{f.index} ({', '.join(f.unsafe)})" for f in self.frames if f.unsafe]
        lines.append("unsafe frames: " + ("; ".join(unsafe) if unsafe else "none"))
        return "\n".join(lines)


class Reporter:
    """Measures frames as they stream out of iter_chunks (keys' fields computed once)."""

    def __init__(self, req: Request, mask: np.ndarray, line_quality: bool = True) -> None:
        self.req, self.mask, self.line_quality = req, mask, line_quality
        self.cfg = req.config.report
        self.fields: list[InkField] = [ink_field(k) for k in req.keys]
        grays = [luma(k) for k in req.keys]
        self.paper = float(np.mean([np.percentile(g, PAPER_PERCENTILE) for g in grays]))
        self.dark = float(np.mean([np.percentile(g, INK_PERCENTILE) for g in grays]))
        self.key_cd = [chamfer(a, b) for a, b in zip(self.fields[:-1], self.fields[1:], strict=True)]
        self.frames: list[FrameReport] = []

    def _around(self, index: int) -> tuple[int, int]:
        j = bisect_right(self.req.indices, index) - 1
        prev = min(max(j, 0), len(self.req.indices) - 1)
        nxt = prev if self.req.indices[prev] >= index else min(prev + 1, len(self.req.indices) - 1)
        return prev, nxt

    def add(self, index: int, frame: np.ndarray) -> FrameReport:
        prev, nxt = self._around(index)
        fld = ink_field(frame)
        cd_p, cd_n = chamfer(fld, self.fields[prev]), chamfer(fld, self.fields[nxt])
        key_ink = 0.5 * (self.fields[prev].ink.sum() + self.fields[nxt].ink.sum())
        c = self.cfg
        rep = FrameReport(index, index in self.req.key_at, float(self.mask[index]), cd_p, cd_n, min(cd_p, cd_n),
                          float(fld.ink.sum() / max(key_ink, 1.0)),
                          grey_share(luma(frame), self.paper, self.dark, c["grey_low"], c["grey_high"]))
        if self.line_quality and not rep.is_key:
            q = score_line_art(frame)
            rep.broken, rep.dotted = q.broken, q.dotted
        if not rep.is_key:
            rep.unsafe = self._flags(rep, prev)
        self.frames.append(rep)
        return rep

    def _flags(self, rep: FrameReport, prev: int) -> list[str]:
        c, flags = self.cfg, []
        gap_cd = self.key_cd[min(prev, len(self.key_cd) - 1)]
        if rep.chamfer_nearest_key > c["unsafe_chamfer_factor"] * gap_cd + 1e-9:
            flags.append("far from both keys")
        if not c["unsafe_ink_ratio_low"] <= rep.ink_ratio <= c["unsafe_ink_ratio_high"]:
            flags.append(f"ink area x{rep.ink_ratio:.2f}")
        if rep.grey_share > c["unsafe_grey_share"]:
            flags.append(f"grey {rep.grey_share:.2f}")
        if rep.broken is not None and rep.broken > c["unsafe_broken"]:
            flags.append(f"broken {rep.broken:.2f}")
        if rep.dotted is not None and rep.dotted > c["unsafe_dotted"]:
            flags.append(f"dotted {rep.dotted:.2f}")
        return flags

    def result(self) -> SequenceReport:
        return SequenceReport(self.req.mode, list(self.req.indices), self.req.length, self.frames)
