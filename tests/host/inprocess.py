"""ComfyUI imported into the test process, once, and a tiny random-weight SD1.5-type model.

The tiny model is a real comfy.model_base.BaseModel (SD15 config at toy width) wrapped in a real
ModelPatcher, so comfy.sample.sample runs the same code path as the KSampler node.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACK_NAME = "m4_director"


def import_comfy(tree: Path) -> types.SimpleNamespace:
    """Put ComfyUI on sys.path and import it for CPU use. Idempotent."""
    if str(tree) not in sys.path:
        sys.path.insert(0, str(tree))
    import comfy.cli_args
    import comfy.options  # noqa: F401  (args_parsing stays False: cli_args ignores pytest's argv)

    comfy.cli_args.args.cpu = True
    comfy.cli_args.args.disable_api_nodes = True
    import comfy.model_management
    import comfy.model_patcher
    import comfy.sample
    import comfy.samplers
    import comfy.supported_models
    import folder_paths

    return types.SimpleNamespace(
        tree=tree,
        model_management=comfy.model_management,
        model_patcher=comfy.model_patcher,
        sample=comfy.sample,
        samplers=comfy.samplers,
        supported_models=comfy.supported_models,
        folder_paths=folder_paths,
    )


def import_pack() -> types.ModuleType:
    """Import this repository as the package `m4_director`, the way ComfyUI's loader would."""
    if PACK_NAME in sys.modules:
        return sys.modules[PACK_NAME]
    spec = importlib.util.spec_from_file_location(
        PACK_NAME, REPO / "__init__.py", submodule_search_locations=[str(REPO)]
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[PACK_NAME] = module
    spec.loader.exec_module(module)
    return module


TINY_UNET = {
    "model_channels": 32,
    "context_dim": 32,
    "in_channels": 4,
    "out_channels": 4,
    "num_res_blocks": [1, 1],
    "channel_mult": [1, 2],
    "transformer_depth": [1, 0],
    "transformer_depth_middle": 1,
    "transformer_depth_output": [1, 1, 0, 0],
    "num_head_channels": -1,
    "use_linear_in_transformer": False,
    "adm_in_channels": None,
    "use_temporal_attention": False,
    "image_size": 32,
    "use_spatial_transformer": True,
    "legacy": False,
}


def tiny_model(comfy: types.SimpleNamespace, seed: int = 0, model_channels: int | None = None):
    """A random-weight SD1.5-type model patcher with context_dim 32 (8x8 latents run in ~10 ms/step);
    model_channels widens it (the guidance overhead benchmark wants a slower step)."""
    import torch

    cfg = dict(TINY_UNET)
    if model_channels is not None:
        cfg["model_channels"] = model_channels
    config = comfy.supported_models.SD15(cfg)
    config.unet_config["num_heads"] = 4  # SD15 forces 8 heads; 32 channels need fewer
    config.unet_config["num_head_channels"] = -1
    config.set_inference_dtype(torch.float32, None)
    model = config.get_model({})
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.diffusion_model.named_parameters():
            # Every weight must be written: ComfyUI creates layers with torch.empty.
            if p.ndim == 1:
                p.copy_(torch.zeros_like(p) if "bias" in name else torch.ones_like(p))
            else:
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=gen) / fan_in**0.5)
    model.eval()
    device = comfy.model_management.get_torch_device()
    return comfy.model_patcher.ModelPatcher(model, load_device=device, offload_device=device)


def conditioning(batch: int = 1, tokens: int = 4, dim: int = 32, seed: int = 1):
    """Positive and negative conditioning lists in ComfyUI's format for the tiny model."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    pos = [[torch.randn(batch, tokens, dim, generator=gen), {}]]
    neg = [[torch.randn(batch, tokens, dim, generator=gen), {}]]
    return pos, neg


def run_node(node, **inputs):
    """A V3 node run as ComfyUI's executor runs it: schema validated, class cloned, EXECUTE_NORMALIZED."""
    node.GET_SCHEMA()
    return node.PREPARE_CLASS_CLONE({}).EXECUTE_NORMALIZED(**inputs)
