"""Image embeddings for Reference Compare: vector checks, cosine mapping, a local open_clip encoder.

Nothing here downloads: an open_clip model is read from a local folder holding
`open_clip_config.json` ({"model_cfg": ..., "preprocess_cfg": ...}, the layout open_clip's
`local-dir:` schema reads) and one weights file (.safetensors preferred, .bin / .pth read with
torch's weights_only loader). A folder without weights is refused rather than silently run with
random weights. ComfyUI's CLIP_VISION models are encoded in the node layer; agents only see vectors.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .imaging import to_rgb_float

CONFIG_NAME = "open_clip_config.json"
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pth")
_OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
_OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


class EmbeddingError(ValueError):
    """A bad embedding vector or an unusable embedding model; the message names which."""


def as_vector(embedding: Any, name: str) -> np.ndarray:
    """One embedding as a finite, non-zero 1-D float64 vector ([1, D] batches of one are accepted)."""
    try:
        arr = np.asarray(embedding.detach().cpu().numpy() if hasattr(embedding, "detach") else embedding,
                         dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise EmbeddingError(f"{name}: not a numeric vector ({exc})") from exc
    if arr.ndim == 2 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 1 or arr.size == 0:
        raise EmbeddingError(f"{name}: expected one vector of shape (D,) or (1, D), got {arr.shape}")
    if not np.isfinite(arr).all():
        raise EmbeddingError(f"{name}: contains NaN or infinite values")
    if float(np.linalg.norm(arr)) <= 1e-12:
        raise EmbeddingError(f"{name}: is all zeros, so it has no direction to compare")
    return arr


def cosine_similarity01(a: Any, b: Any, names: tuple[str, str] = ("sketch_embedding", "reference_embedding")) -> float:
    """Cosine similarity mapped to 0..1 as max(0, cos).

    Negative cosine is treated as "nothing in common" (0) instead of being folded into the range:
    image-image cosines of real CLIP models are almost never negative, so (cos + 1) / 2 would only
    compress the useful range into 0.5..1.
    """
    va, vb = as_vector(a, names[0]), as_vector(b, names[1])
    if va.shape != vb.shape:
        raise EmbeddingError(
            f"{names[0]} has {va.size} dimensions but {names[1]} has {vb.size}: "
            "both images must be embedded by the same model"
        )
    cos = float(np.dot(va, vb) / (np.linalg.norm(va) * np.linalg.norm(vb)))
    return float(np.clip(cos, 0.0, 1.0))


def _weights_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in _WEIGHT_SUFFIXES)


def resolve_model_folder(path: str | Path) -> Path:
    """The folder of a local open_clip model (path may name the folder or a file inside it)."""
    p = Path(str(path).strip()).expanduser()
    if not str(path).strip():
        raise EmbeddingError("open_clip_model_path: empty path")
    if p.is_file():
        p = p.parent
    if not p.is_dir():
        raise EmbeddingError(f"open_clip_model_path: folder not found: {p}")
    if not (p / CONFIG_NAME).is_file():
        raise EmbeddingError(f"open_clip_model_path: {p} has no {CONFIG_NAME} (open_clip's local model layout)")
    if not _weights_in(p):
        raise EmbeddingError(f"open_clip_model_path: {p} has no weights file (*.safetensors, *.bin or *.pth)")
    return p


@dataclass
class OpenClipImageEncoder:
    """An open_clip model's image tower with the preprocessing its config asks for."""

    model: Any
    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def preprocess(self, image: np.ndarray, name: str = "image") -> np.ndarray:
        """(H, W, C) image -> (3, S, S) float32: shorter side to S, centre crop, normalise."""
        rgb = to_rgb_float(image, name)
        h, w = rgb.shape[:2]
        s = self.image_size / min(h, w)
        nh, nw = max(self.image_size, round(h * s)), max(self.image_size, round(w * s))
        interp = cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC
        resized = np.clip(cv2.resize(rgb, (nw, nh), interpolation=interp), 0.0, 1.0)
        top, left = (nh - self.image_size) // 2, (nw - self.image_size) // 2
        crop = resized[top:top + self.image_size, left:left + self.image_size]
        norm = (crop - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        return np.ascontiguousarray(norm.transpose(2, 0, 1), dtype=np.float32)

    def embed(self, image: np.ndarray, name: str = "image") -> np.ndarray:
        """One image embedding (1-D float64)."""
        import torch

        x = torch.from_numpy(self.preprocess(image, name))[None]
        with torch.inference_mode():
            out = self.model.encode_image(x)
        return as_vector(out, f"{name} embedding")


_CACHE: dict[tuple[str, float], OpenClipImageEncoder] = {}
_CACHE_LOCK = threading.Lock()


def load_open_clip(path: str | Path) -> OpenClipImageEncoder:
    """Load (once per folder and modification time) a local open_clip model on the CPU."""
    folder = resolve_model_folder(path).resolve()
    stamp = max(f.stat().st_mtime for f in [folder / CONFIG_NAME, *_weights_in(folder)])
    key = (str(folder), stamp)
    with _CACHE_LOCK:
        if key in _CACHE:
            return _CACHE[key]
        try:
            import open_clip
        except ImportError as exc:
            raise EmbeddingError("open_clip_model_path: the open_clip_torch package is not installed") from exc
        try:
            model = open_clip.create_model(f"local-dir:{folder}", device="cpu")
        except (OSError, RuntimeError, ValueError, KeyError, TypeError) as exc:
            raise EmbeddingError(f"open_clip_model_path: cannot load the model in {folder}: {exc}") from exc
        model.eval()
        cfg = getattr(model.visual, "preprocess_cfg", None) or {}
        size = model.visual.image_size
        size = int(size[0] if isinstance(size, (tuple, list)) else size)
        encoder = OpenClipImageEncoder(
            model=model,
            image_size=size,
            mean=tuple(cfg.get("mean", _OPENAI_MEAN)),
            std=tuple(cfg.get("std", _OPENAI_STD)),
        )
        _CACHE.clear()  # keep one model in memory: a user switches models, not juggles them
        _CACHE[key] = encoder
        return encoder
