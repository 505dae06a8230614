"""Subject tags: from a local open_clip model when one is configured, else from the user's text.

The model is read only from disk (an open_clip folder with open_clip_config.json + weights, or a
model-config json with one weights file beside it); nothing is ever downloaded. torch and
open_clip are imported only when a model is actually configured.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

# Danbooru-style tags the Prompt Engineer can use directly; scored by text-image similarity.
TAG_VOCABULARY: tuple[str, ...] = (
    "1girl", "1boy", "multiple people", "animal", "cat", "dog", "bird", "turtle", "horse",
    "building", "house", "vehicle", "car", "aircraft", "hot air balloon", "bag", "backpack",
    "flower", "tree", "food", "weapon", "robot", "monster", "furniture", "landscape", "face",
    "hand", "clothes", "object",
)
PROMPT_TEMPLATE = "a line drawing of {}"
TOP_K = 3
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pth")  # the files open_clip looks for in a folder


class SubjectTagError(ValueError):
    """The open_clip model path or the subject_tags text cannot be used."""


def parse_text_tags(text: str | None) -> list[str]:
    """Comma-separated tags -> list, stripped, empty ones dropped, first spelling kept per tag."""
    if text is None:
        return []
    if not isinstance(text, str):
        raise SubjectTagError(f"subject_tags: expected text, got {type(text).__name__}")
    seen: set[str] = set()
    tags: list[str] = []
    for raw in text.replace("\n", ",").split(","):
        tag = " ".join(raw.split())
        if tag and tag.lower() not in seen:
            seen.add(tag.lower())
            tags.append(tag)
    return tags


@dataclass
class TagResult:
    tags: list[str]
    scores: dict[str, float]


def _find_weights(folder: Path, stem: str | None) -> Path:
    if stem:
        for suf in WEIGHT_SUFFIXES:
            cand = folder / f"{stem}{suf}"
            if cand.is_file():
                return cand
    found = sorted(p for p in folder.iterdir() if p.suffix in WEIGHT_SUFFIXES and p.is_file())
    if len(found) != 1:
        what = "no weights file" if not found else f"{len(found)} weights files"
        raise SubjectTagError(
            f"open_clip_model: {what} in {folder} (expected one of {', '.join(WEIGHT_SUFFIXES)}"
            + (f" named {stem}.*" if stem else "") + ")"
        )
    return found[0]


def _model_source(path: Path) -> tuple[str, str | None]:
    """(open_clip model name, weights file or None) for a model folder or a config json."""
    if path.is_file() and path.name == "open_clip_config.json":
        path = path.parent
    if path.is_dir():
        cfg_path = path / "open_clip_config.json"
        if not cfg_path.is_file():
            raise SubjectTagError(f"open_clip_model: {path} has no open_clip_config.json")
        _check_config(cfg_path, wrapped=True)
        if not any(p.suffix in WEIGHT_SUFFIXES for p in path.iterdir()):  # never run random weights
            raise SubjectTagError(f"open_clip_model: no weights file ({', '.join(WEIGHT_SUFFIXES)}) in {path}")
        return f"local-dir:{path}", None  # open_clip's own offline folder loader
    if path.is_file() and path.suffix == ".json":
        _check_config(path, wrapped=False)
        weights = _find_weights(path.parent, path.stem)
        import open_clip

        open_clip.add_model_config(path)  # registers the architecture under the file's stem
        return path.stem, str(weights)
    raise SubjectTagError(f"open_clip_model: {path} is neither a model folder nor a config .json file")


def _check_config(cfg_path: Path, wrapped: bool) -> None:
    try:
        data = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SubjectTagError(f"open_clip_model: cannot read {cfg_path.name}: {exc}") from exc
    model_cfg = data.get("model_cfg") if wrapped and isinstance(data, dict) else data
    if not isinstance(model_cfg, dict) or not {"embed_dim", "vision_cfg", "text_cfg"} <= set(model_cfg):
        where = "model_cfg with " if wrapped else ""
        raise SubjectTagError(f"open_clip_model: {cfg_path.name} needs {where}embed_dim, vision_cfg and text_cfg")
    remote = [k for k in ("hf_model_name", "hf_tokenizer_name") if k in model_cfg["text_cfg"]]
    remote += [k for k in ("timm_model_name",) if k in model_cfg["vision_cfg"]]
    if remote:  # these make open_clip reach for the Hugging Face hub
        raise SubjectTagError(f"open_clip_model: configs naming remote towers ({', '.join(remote)}) are not supported")


class OpenClipTagger:
    """A local open_clip model scoring TAG_VOCABULARY against an image (text embeddings cached)."""

    def __init__(self, path: str | Path, vocabulary: tuple[str, ...] = TAG_VOCABULARY) -> None:
        import open_clip
        import torch

        name, weights = _model_source(Path(path).expanduser())
        try:
            model, _, preprocess = open_clip.create_model_and_transforms(
                name, pretrained=weights, pretrained_image=False, pretrained_text=False, device="cpu",
            )
            tokenizer = open_clip.get_tokenizer(name)
        except Exception as exc:  # wrong or truncated checkpoint, mismatched config: name the path
            raise SubjectTagError(f"open_clip_model: cannot load the model at {path}: {exc}") from exc
        model.eval()
        self._torch = torch
        self.model = model
        self.preprocess = preprocess
        self.vocabulary = vocabulary
        with torch.no_grad():
            text = model.encode_text(tokenizer([PROMPT_TEMPLATE.format(t) for t in vocabulary]))
            self.text_features = torch.nn.functional.normalize(text.float(), dim=-1)

    def _prepare(self, rgb: np.ndarray) -> Any:
        from PIL import Image

        h, w = rgb.shape[:2]
        side = max(h, w)  # pad to a square of paper so the model's centre crop keeps the whole drawing
        canvas = np.ones((side, side, 3), dtype=np.float32)
        top, left = (side - h) // 2, (side - w) // 2
        canvas[top:top + h, left:left + w] = rgb
        pil = Image.fromarray(np.round(canvas * 255.0).astype(np.uint8), mode="RGB")
        return self.preprocess(pil)[None]

    def tag(self, rgb: np.ndarray, top_k: int = TOP_K) -> TagResult:
        torch = self._torch
        with torch.no_grad():
            feat = torch.nn.functional.normalize(self.model.encode_image(self._prepare(rgb)).float(), dim=-1)
            scale = float(self.model.logit_scale.exp().clamp(max=100.0))
            probs = torch.softmax(scale * feat @ self.text_features.T, dim=-1)[0].numpy()
        probs = np.nan_to_num(probs, nan=0.0)
        order = np.argsort(-probs, kind="stable")[:top_k]
        return TagResult(
            tags=[self.vocabulary[i] for i in order], scores={self.vocabulary[i]: float(probs[i]) for i in order}
        )


_CACHE: dict[tuple[str, float], OpenClipTagger] = {}
_LOCK = threading.Lock()


def load_tagger(path: str | Path) -> OpenClipTagger:
    """Load (once per path and file version) the open_clip model at `path`."""
    p = Path(path).expanduser()
    if not p.exists():
        raise SubjectTagError(f"open_clip_model: {p} does not exist")
    key = (str(p.resolve()), p.stat().st_mtime)
    with _LOCK:
        if key not in _CACHE:
            _CACHE[key] = OpenClipTagger(p)
        return _CACHE[key]
