"""Guided CPPN: optimise the CPPN weight sets toward a target (a text prompt's open_clip embedding, or a
reference image's colour and orientation histograms) while a regulariser keeps the picture reacting to
the audio (loud and quiet frames must stay as different as they were). Results are cached by target
and settings."""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..measure.embeddings import EmbeddingError, load_open_clip, resolve_model_folder
from .audio_features import AudioFeatures
from .cppn import CPPNWeights
from .errors import PatternsError
from .render import Renderer, _lookup, make_renderer, render_field, schedule_for

Loss = Callable[[torch.Tensor], torch.Tensor]  # images [N, H, W, 3] -> scalar


@dataclass(frozen=True)
class GuideSettings:
    steps: int = 60
    lr: float = 0.02
    size: int = 64  # optimisation resolution
    reactivity_weight: float = 1.0
    seed: int = 0

    def check(self) -> GuideSettings:
        if not 1 <= self.steps <= 5000:
            raise PatternsError(f"steps: expected 1..5000, got {self.steps}")
        if not 0 < self.lr <= 1:
            raise PatternsError(f"lr: expected a number in (0, 1], got {self.lr}")
        if not 16 <= self.size <= 512:
            raise PatternsError(f"size: expected 16..512 px for optimisation, got {self.size}")
        if not 0 <= self.reactivity_weight <= 100:
            raise PatternsError(f"reactivity_weight: expected 0..100, got {self.reactivity_weight}")
        return self


def _frame(r: Renderer, w: CPPNWeights, k: int, sched: object) -> torch.Tensor:
    v = render_field(r, w, k, sched)  # type: ignore[arg-type]
    return _lookup(r.lut, v, float(sched.palette_pos[k])).reshape(r.height, r.width, 3)  # type: ignore[attr-defined]


def _loud_quiet(features: AudioFeatures) -> tuple[int, int]:
    drive = features.values["onset"] + features.values["rms"]
    return int(np.argmax(drive)), int(np.argmin(drive))


def optimise(r: Renderer, features: AudioFeatures, loss_fn: Loss, settings: GuideSettings,
             on_step: Callable[[int, float], None] | None = None) -> tuple[list[CPPNWeights], list[float]]:
    """Adam on every weight set; each step renders the loud and the quiet frame of one set."""
    s = settings.check()
    sched = schedule_for(r, features)
    loud, quiet = _loud_quiet(features)
    sets = [CPPNWeights(w.wz.clone(), [(a.clone(), b.clone()) for a, b in w.layers]) for w in r.weights]
    params = [p for w in sets for p in w.requires_grad_()]
    opt = torch.optim.Adam(params, lr=s.lr)
    with torch.no_grad():
        base = [float((_frame(r, w, loud, sched) - _frame(r, w, quiet, sched)).abs().mean()) for w in sets]
    gen = torch.Generator().manual_seed(s.seed)
    losses = []
    for step in range(s.steps):
        i = int(torch.randint(len(sets), (1,), generator=gen))
        a, b = _frame(r, sets[i], loud, sched), _frame(r, sets[i], quiet, sched)
        target = loss_fn(torch.stack([a, b]))
        keep = F.relu(1.0 - (a - b).abs().mean() / max(base[i], 1e-6))  # reactivity may not shrink
        loss = target + s.reactivity_weight * keep
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(target.detach()))
        if on_step is not None:
            on_step(step + 1, losses[-1])
    return [CPPNWeights(w.wz.detach(), [(a.detach(), b.detach()) for a, b in w.layers]) for w in sets], losses


# --- targets -------------------------------------------------------------------------------------------

def soft_colour_histogram(img: torch.Tensor, bins: int = 12, sigma: float = 0.05) -> torch.Tensor:
    """[N, H, W, 3] -> [3, bins] per-channel histograms with Gaussian soft binning (differentiable)."""
    centres = torch.linspace(0, 1, bins, device=img.device)
    x = img.reshape(-1, 3)
    w = torch.exp(-((x[:, :, None] - centres) ** 2) / (2 * sigma ** 2))
    h = w.sum(0)
    return h / h.sum(1, keepdim=True)


def soft_orientation_histogram(img: torch.Tensor, bins: int = 8) -> torch.Tensor:
    """[N, H, W, 3] -> [bins] gradient-orientation histogram weighted by gradient magnitude (cos^2 kernel)."""
    g = img.mean(-1)[:, None]
    kx = torch.tensor([[[[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]]], device=img.device)
    gx, gy = F.conv2d(g, kx), F.conv2d(g, kx.transpose(2, 3))
    mag = torch.sqrt(gx ** 2 + gy ** 2 + 1e-8)
    theta = torch.atan2(gy, gx)
    centres = torch.arange(bins, device=img.device) * (np.pi / bins)
    w = torch.cos(theta[..., None] - centres) ** 2  # orientation (mod pi), smooth
    w = w ** 8
    h = (w * mag[..., None]).sum(dim=(0, 1, 2, 3))
    return h / (h.sum() + 1e-8)


def histogram_target(reference: np.ndarray) -> Loss:
    """Loss toward a reference image's colour and orientation histograms (both L1, summed)."""
    if reference.ndim != 3 or reference.shape[2] != 3 or not np.isfinite(reference).all():
        raise PatternsError(f"reference: expected a finite [H, W, 3] image, got shape {tuple(reference.shape)}")
    ref = torch.from_numpy(np.ascontiguousarray(reference, dtype=np.float32))[None]
    c_ref, o_ref = soft_colour_histogram(ref), soft_orientation_histogram(ref)

    def loss(images: torch.Tensor) -> torch.Tensor:
        return ((soft_colour_histogram(images) - c_ref).abs().sum() / 3
                + (soft_orientation_histogram(images) - o_ref).abs().sum())

    return loss


def clip_target(model: Any, text_embedding: torch.Tensor, image_size: int, mean: tuple[float, ...],
                std: tuple[float, ...], crops: int = 4, seed: int = 0) -> Loss:
    """1 - cosine(image embedding of augmented crops, text embedding). Augmentations: random resized crops
    (50-100 % of the side), horizontal flips, a little noise."""
    t = F.normalize(text_embedding.reshape(1, -1).float(), dim=-1)
    m = torch.tensor(mean).reshape(1, 3, 1, 1)
    sd = torch.tensor(std).reshape(1, 3, 1, 1)
    gen = torch.Generator().manual_seed(seed)

    def loss(images: torch.Tensor) -> torch.Tensor:
        x = images.permute(0, 3, 1, 2)
        n, _, h, w = x.shape
        views = []
        for _ in range(crops):
            side = int(min(h, w) * (0.5 + 0.5 * float(torch.rand(1, generator=gen))))
            top = int(torch.randint(h - side + 1, (1,), generator=gen))
            left = int(torch.randint(w - side + 1, (1,), generator=gen))
            v = x[:, :, top:top + side, left:left + side]
            if float(torch.rand(1, generator=gen)) < 0.5:
                v = v.flip(3)
            v = F.interpolate(v, size=(image_size, image_size), mode="bilinear", align_corners=False)
            views.append(v + 0.02 * torch.randn(v.shape, generator=gen))
        emb = F.normalize(model.encode_image((torch.cat(views) - m) / sd).float(), dim=-1)
        return 1.0 - (emb @ t.T).mean()

    return loss


def load_clip_target(model_path: str, prompt: str, crops: int = 4, seed: int = 0) -> tuple[Loss, str]:
    """A local open_clip model (open_clip's local-dir layout, nothing downloaded) and a prompt -> the CLIP
    loss and an id for the cache (model folder, its modification time, the prompt)."""
    if not prompt.strip():
        raise PatternsError("prompt: empty; the CLIP guidance needs a text to move toward")
    try:
        folder = resolve_model_folder(model_path).resolve()
        encoder = load_open_clip(folder)
    except EmbeddingError as exc:
        raise PatternsError(str(exc)) from exc
    import open_clip

    tokens = open_clip.get_tokenizer(f"local-dir:{folder}")([prompt])
    with torch.no_grad():
        text = encoder.model.encode_text(tokens)[0]
    stamp = max(p.stat().st_mtime for p in folder.iterdir() if p.is_file())
    for p in encoder.model.parameters():
        p.requires_grad_(False)
    loss = clip_target(encoder.model, text, encoder.image_size, encoder.mean, encoder.std, crops, seed)
    return loss, f"clip:{folder}:{stamp}:{prompt}"


# --- cache ---------------------------------------------------------------------------------------------

_CACHE: OrderedDict[str, list[CPPNWeights]] = OrderedDict()
_CACHE_SIZE = 8


def cache_key(target_id: str, preset: str, pattern: str | None, seed: int, settings: GuideSettings) -> str:
    blob = json.dumps({"target": target_id, "preset": preset, "pattern": pattern, "seed": seed,
                       "settings": asdict(settings)}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def guided_weights(features: AudioFeatures, preset: str, pattern: str | None, seed: int, target_id: str,
                   loss_fn: Callable[[], Loss], settings: GuideSettings,
                   on_step: Callable[[int, float], None] | None = None) -> tuple[list[CPPNWeights], bool]:
    """Optimised weight sets for (target, preset, pattern, seed, settings); (weights, came_from_cache).
    The features only enter the reactivity regulariser; the cache key leaves them out on purpose."""
    key = cache_key(target_id, preset, pattern, seed, settings)
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key], True
    r = make_renderer(preset, settings.size, settings.size, seed, pattern=pattern)
    weights, _ = optimise(r, features, loss_fn(), settings, on_step)
    _CACHE[key] = weights
    while len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return weights, False
