"""A tiny randomly initialised open_clip model saved as the pack's loaders read one (config + safetensors
in a folder): no CLIP weights exist here, so the tests make their own."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# Text tower with open_clip's real vocabulary size: the tokenizer's ids must fit (CLIP-guided prompts).
TEXT_CAPABLE: dict[str, Any] = {
    "model_cfg": {
        "embed_dim": 16,
        "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 16},
        "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 16, "heads": 2, "layers": 1},
    },
    "preprocess_cfg": {"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]},
}


def save_tiny_open_clip(folder: Path, cfg: dict[str, Any] = TEXT_CAPABLE, seed: int = 0) -> Path:
    """Write open_clip_config.json and open_clip_model.safetensors for `cfg` into folder; returns it."""
    import open_clip
    import torch
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "open_clip_config.json").write_text(json.dumps(cfg))
    torch.manual_seed(seed)
    model = open_clip.model.CLIP(**cfg["model_cfg"])
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "open_clip_model.safetensors"))
    return folder
