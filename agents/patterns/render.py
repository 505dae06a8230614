"""Renders an IMAGE batch from features and a mapping preset, in chunks of frames (bounded memory),
deterministic for a seed, on any torch device."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch

from .audio_features import AudioFeatures
from .config import MappingPreset, PatternsConfig, default_config, get_preset
from .cppn import CPPNWeights, cppn_forward, random_weights, slerp
from .errors import PatternsError
from .fields import FieldParams, check_pattern, make_field_params, pattern_field
from .palettes import named_palette
from .schedule import Schedule, make_schedule


@dataclass
class Renderer:
    """Everything fixed for one render: weight sets, field parameters, palette and base coordinates."""

    config: PatternsConfig
    preset: MappingPreset
    pattern: str
    lut: torch.Tensor  # [N, 3]
    weights: list[CPPNWeights]
    params: FieldParams
    width: int
    height: int
    device: torch.device
    seed: int
    coords: torch.Tensor = field(init=False)

    def __post_init__(self) -> None:
        s = self.config.render["coord_scale"]
        short = min(self.width, self.height)
        xs = (torch.arange(self.width, dtype=torch.float32) + 0.5 - self.width / 2) / (short / 2) * s
        ys = (torch.arange(self.height, dtype=torch.float32) + 0.5 - self.height / 2) / (short / 2) * s
        yy, xx = torch.meshgrid(ys, xs, indexing="ij")
        self.coords = torch.stack([xx.reshape(-1), yy.reshape(-1)], 1).to(self.device)


def check_size(width: int, height: int, config: PatternsConfig) -> tuple[int, int]:
    lo, hi = config.rint("min_size"), config.rint("max_size")
    for name, v in (("width", width), ("height", height)):
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or not lo <= v <= hi:
            raise PatternsError(f"{name}: expected an integer number of pixels in [{lo}, {hi}], got {v!r}")
    return int(width), int(height)


def make_renderer(preset: str | MappingPreset, width: int, height: int, seed: int, *, pattern: str | None = None,
                  palette: str | np.ndarray | None = None, device: torch.device | None = None,
                  config: PatternsConfig | None = None, weights: list[CPPNWeights] | None = None) -> Renderer:
    cfg = config or default_config()
    mp = preset if isinstance(preset, MappingPreset) else get_preset(preset)
    w, h = check_size(width, height, cfg)
    pat = check_pattern(pattern or mp.pattern)
    lut = palette if isinstance(palette, np.ndarray) else named_palette(palette or mp.palette, cfg)
    dev = device or torch.device("cpu")
    gen = torch.Generator().manual_seed(int(seed))
    sets = weights or [random_weights(cfg, gen) for _ in range(cfg.rint("weight_sets"))]
    params = make_field_params(cfg, gen, dev)
    return Renderer(cfg, mp, pat, torch.from_numpy(np.ascontiguousarray(lut)).float().to(dev),
                    [s.to(dev) for s in sets], params, w, h, dev, int(seed))


def schedule_for(renderer: Renderer, features: AudioFeatures) -> Schedule:
    return make_schedule(features, renderer.preset, renderer.config, np.random.default_rng(renderer.seed))


def _lookup(lut: torch.Tensor, v: torch.Tensor, pos: float) -> torch.Tensor:
    """Scalar field [P] + palette position -> colours [P, 3]; the position mirrors at the ends (no jump)."""
    p = torch.remainder(v + pos, 2.0)
    p = 1.0 - torch.abs(p - 1.0)
    x = p * (lut.shape[0] - 1)
    i0 = torch.clamp(x.floor().long(), 0, lut.shape[0] - 2)
    f = (x - i0.to(x.dtype))[:, None]
    return lut[i0] * (1 - f) + lut[i0 + 1] * f


def render_field(r: Renderer, w: CPPNWeights, k: int, sched: Schedule) -> torch.Tensor:
    """Frame k's scalar field [P] with weight set w."""
    p = r.coords / float(sched.zoom[k])
    ch = pattern_field(r.pattern, p, float(sched.time[k]), float(sched.warp[k]), r.params, r.config)
    radius = torch.sqrt((p * p).sum(1, keepdim=True) + 1e-12)
    x = torch.cat([ch, radius], 1)
    z = torch.as_tensor(sched.z[k], dtype=torch.float32, device=r.device)
    return cppn_forward(x, z, w, r.preset.layer_freq)


def render_frame(r: Renderer, k: int, sched: Schedule) -> torch.Tensor:
    """Frame k as [H, W, 3] in 0..1."""
    a, b, s = int(sched.set_a[k]), int(sched.set_b[k]), float(sched.blend[k])
    pos = float(sched.palette_pos[k])
    if s <= 0 or a == b:
        rgb = _lookup(r.lut, render_field(r, r.weights[a], k, sched), pos)
    elif sched.transition == "crossfade":
        ca = _lookup(r.lut, render_field(r, r.weights[a], k, sched), pos)
        cb = _lookup(r.lut, render_field(r, r.weights[b], k, sched), pos)
        rgb = ca * (1 - s) + cb * s
    else:
        rgb = _lookup(r.lut, render_field(r, slerp(r.weights[a], r.weights[b], s), k, sched), pos)
    return rgb.reshape(r.height, r.width, 3)


def frames_per_chunk(r: Renderer) -> int:
    return max(1, r.config.rint("max_pixels_per_chunk") // (r.width * r.height))


def check_frame_range(r: Renderer, n_frames: int, start: int, count: int) -> tuple[int, int]:
    """count 0 = to the end. The batch must fit render.max_frames and fields.max_output_mb."""
    if not 0 <= start < n_frames:
        raise PatternsError(f"start_frame: expected 0..{n_frames - 1}, got {start}")
    stop = n_frames if count <= 0 else min(n_frames, start + count)
    n = stop - start
    mb = n * r.width * r.height * 3 * 4 / 2 ** 20
    if n > r.config.rint("max_frames") or mb > r.config.fields["max_output_mb"]:
        raise PatternsError(f"frames: {n} frames at {r.width}x{r.height} is {mb:.0f} MB, over the limit "
                            f"({r.config.rint('max_frames')} frames, {r.config.fields['max_output_mb']:g} MB); "
                            "render a range with start_frame/frame_count")
    return start, stop


def render_chunks(r: Renderer, sched: Schedule, start: int, stop: int,
                  on_chunk: Callable[[int, int], None] | None = None) -> Iterator[torch.Tensor]:
    """Frames [start, stop) as CPU float32 chunks [m, H, W, 3]; on_chunk(done, total) after each chunk."""
    step = frames_per_chunk(r)
    with torch.no_grad():
        for c0 in range(start, stop, step):
            c1 = min(stop, c0 + step)
            chunk = torch.stack([render_frame(r, k, sched) for k in range(c0, c1)]).float().cpu()
            yield chunk
            if on_chunk is not None:
                on_chunk(c1 - start, stop - start)
