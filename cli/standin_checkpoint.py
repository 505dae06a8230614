"""A random-weight checkpoint that ComfyUI detects as SD1.5 (and a matching random-weight ControlNet),
for the real-server tests and the demo.

No real model can be downloaded here, so the server tier loads this stand-in instead: ComfyUI's own
modules (UNetModel, the SD1 CLIP-L text model, TAESD) are instantiated at the smallest shape the SD1.5
detector accepts (one UNet level, one res block, one input-block transformer, no middle block), every
tensor is filled from a fixed seed (ComfyUI creates layers with torch.empty) and saved as fp16
safetensors. The building and the check happen in a subprocess so the caller never imports comfy.

The stand-in ControlNet is comfy.cldm.cldm.ControlNet at the same UNet shape plus a 3-channel hint
encoder, so ControlNetLoader detects it, and ControlNetApplyAdvanced (also behind SetUnionControlNetType,
which a plain ControlNet ignores) runs with the stand-in checkpoint. It is a plain ControlNet, not a
Union one: it stands in for the M4 template's ControlNet Union file only so the graph executes.

Usage: python cli/standin_checkpoint.py               prints the cached checkpoint's path (builds it if needed)
       python cli/standin_checkpoint.py --controlnet  the same for the stand-in ControlNet
"""

from __future__ import annotations

import argparse
import fcntl
import importlib.util
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

# Bump when the weights or the layout change: the cache key changes with it.
GENERATOR_VERSION = 1
SEED = 1_5_2024
METADATA_TAG = "m4_standin_generator"
REPO = Path(__file__).resolve().parents[1]

# The SD1.5 detector checks model_channels, context_dim, use_linear_in_transformer, adm and temporal
# attention only; depth, res blocks and the middle block are read from tensor shapes.
UNET_CONFIG: dict[str, Any] = {
    "image_size": 32,
    "in_channels": 4,
    "out_channels": 4,
    "model_channels": 320,
    "num_res_blocks": [1],
    "channel_mult": [1],
    "transformer_depth": [1],
    "transformer_depth_output": [1, 1],
    "transformer_depth_middle": -2,  # -2 = no middle block at all
    "context_dim": 768,
    "num_heads": 8,
    "num_head_channels": -1,
    "use_linear_in_transformer": False,
    "use_spatial_transformer": True,
    "legacy": False,
    "adm_in_channels": None,
    "use_temporal_attention": False,
    "use_temporal_resblock": False,
}


# The build subprocess's flag per stand-in kind.
BUILD_FLAGS = {"checkpoint": "--build", "controlnet": "--build-controlnet"}


class StandinError(RuntimeError):
    """The stand-in checkpoint could not be built or did not load as SD1.5."""


def load_comfy_host() -> ModuleType:
    # scripts/ is not a package and cli/ must not edit sys.path: load the helper by file.
    spec = importlib.util.spec_from_file_location("m4_comfy_host", REPO / "scripts" / "comfy_host.py")
    if spec is None or spec.loader is None:
        raise StandinError(f"cannot load {REPO / 'scripts' / 'comfy_host.py'}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def comfy_version(comfy_tree: Path) -> str:
    """ComfyUI's version from comfyui_version.py, read as text (the caller never imports comfy)."""
    version_file = comfy_tree / "comfyui_version.py"
    if not version_file.is_file():
        return "unknown"
    match = re.search(r"__version__\s*=\s*['\"]([^'\"]+)['\"]", version_file.read_text())
    return match.group(1) if match else "unknown"


def cache_key(comfy_tree: Path) -> str:
    return f"comfy{comfy_version(comfy_tree)}-gen{GENERATOR_VERSION}"


def is_valid_checkpoint(path: Path) -> bool:
    """Cheap integrity check: a complete safetensors file carrying this generator's tag.

    A partial write (a killed build, a full disk) fails the size check; the full load check ran in
    the build subprocess before the file was moved into place.
    """
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            header_len = int.from_bytes(fh.read(8), "little")
            if header_len <= 0 or header_len > min(size, 100_000_000):
                return False
            header = json.loads(fh.read(header_len))
    except (OSError, ValueError):
        return False
    meta = header.pop("__metadata__", {}) or {}
    if meta.get(METADATA_TAG) != str(GENERATOR_VERSION) or not header:
        return False
    data_end = max(int(info["data_offsets"][1]) for info in header.values())
    return size == 8 + header_len + data_end


def generate_checkpoint(comfy_tree: Path, dest: Path, timeout: float = 900, *, kind: str = "checkpoint",
                        checkpoint: Path | None = None) -> Path:
    """Build a stand-in (kind 'checkpoint' or 'controlnet') into dest atomically, in a subprocess that
    also checks it loads and samples in ComfyUI (a ControlNet is checked with the stand-in `checkpoint`)."""
    if kind not in BUILD_FLAGS:
        raise StandinError(f"unknown stand-in kind {kind!r}; expected one of {sorted(BUILD_FLAGS)}")
    comfy_tree = Path(comfy_tree).resolve()
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    # The suffix must stay .safetensors: ComfyUI picks the loader by extension.
    tmp = dest.with_name(f".tmp-{os.getpid()}-{dest.name}")
    cmd = [sys.executable, str(Path(__file__).resolve()), BUILD_FLAGS[kind], str(comfy_tree), str(tmp)]
    if kind == "controlnet":
        if checkpoint is None:
            raise StandinError("checking the stand-in ControlNet needs the stand-in checkpoint's path")
        cmd.append(str(checkpoint))
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=str(comfy_tree))  # noqa: S603
    except subprocess.TimeoutExpired as exc:
        tmp.unlink(missing_ok=True)
        raise StandinError(f"building the stand-in {kind} took over {timeout:.0f} s") from exc
    if proc.returncode != 0 or not is_valid_checkpoint(tmp):
        tmp.unlink(missing_ok=True)
        tail = "\n".join((proc.stderr or proc.stdout).splitlines()[-25:])
        raise StandinError(f"building the stand-in {kind} failed (exit {proc.returncode}):\n{tail}")
    os.replace(tmp, dest)
    return dest


def _cached(kind: str, stem: str, comfy_tree: Path | None, cache: Path | None,
            checkpoint: Path | None = None) -> Path:
    host = load_comfy_host()
    try:
        tree = Path(comfy_tree) if comfy_tree else host.ensure_comfyui()
    except SystemExit as exc:  # comfy_host's way of saying the tree is unusable
        raise StandinError(f"no usable ComfyUI tree: {exc}") from exc
    folder = Path(cache) if cache else host.cache_dir() / "standin"
    folder.mkdir(parents=True, exist_ok=True)
    dest = folder / f"{stem}-{cache_key(tree)}.safetensors"
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not is_valid_checkpoint(dest):
            dest.unlink(missing_ok=True)
            generate_checkpoint(tree, dest, kind=kind, checkpoint=checkpoint)
    return dest


def cached_checkpoint(comfy_tree: Path | None = None, cache: Path | None = None) -> Path:
    """The stand-in checkpoint for this ComfyUI version from the cache, built once (parallel callers wait)."""
    return _cached("checkpoint", "m4-standin-sd15", comfy_tree, cache)


def cached_controlnet(comfy_tree: Path | None = None, cache: Path | None = None) -> Path:
    """The stand-in ControlNet (random weights, matches the stand-in checkpoint) from the cache, built once."""
    # The checkpoint first: it takes the same lock, and the ControlNet's check samples with it.
    checkpoint = cached_checkpoint(comfy_tree, cache)
    return _cached("controlnet", "m4-standin-controlnet-sd15", comfy_tree, cache, checkpoint)


# ---- everything below runs in the build subprocess, with ComfyUI on sys.path ----


def _random_like(name: str, tensor: Any, gen: Any) -> Any:
    import torch

    if not tensor.is_floating_point() or tensor.ndim == 0:
        # Integer buffers and 0-d parameters (logit_scale, vae_scale/shift) are set by their constructors.
        return tensor.detach().clone()
    if tensor.ndim == 1:
        # Norm gains 1, biases 0: keeps activations in range through 12 CLIP layers.
        return torch.ones_like(tensor) if name.endswith("weight") else torch.zeros_like(tensor)
    if "embedding" in name:
        return torch.randn(tensor.shape, generator=gen) * 0.02
    fan_in = tensor[0].numel()
    return torch.randn(tensor.shape, generator=gen) / fan_in**0.5


def _build(comfy_tree: Path, out: Path) -> dict[str, Any]:
    sys.path.insert(0, str(comfy_tree))
    import comfy.options  # noqa: F401, I001  (first, so args_parsing stays False: no argv parsing)
    import comfy.cli_args

    comfy.cli_args.args.cpu = True
    import safetensors.torch
    import torch
    from comfy.ldm.modules.diffusionmodules.openaimodel import UNetModel
    from comfy.sd1_clip import SD1ClipModel
    from comfy.taesd.taesd import TAESD

    started = time.perf_counter()
    gen = torch.Generator().manual_seed(SEED)
    parts = (
        ("model.diffusion_model.", UNetModel(**UNET_CONFIG, dtype=torch.float32, device="cpu")),
        ("cond_stage_model.", SD1ClipModel(device="cpu", dtype=torch.float32).clip_l),
        ("first_stage_model.", TAESD(latent_channels=4)),
    )
    state: dict[str, torch.Tensor] = {}
    for prefix, module in parts:
        for name, tensor in module.state_dict().items():
            filled = _random_like(name, tensor, gen)
            state[prefix + name] = (filled.half() if filled.is_floating_point() else filled).contiguous()
    metadata = {
        METADATA_TAG: str(GENERATOR_VERSION),
        "m4_seed": str(SEED),
        "m4_comfyui_version": comfy_version(comfy_tree),
    }
    safetensors.torch.save_file(state, str(out), metadata=metadata)
    built = time.perf_counter() - started
    return {"build_seconds": round(built, 2), **_verify(out, state), "bytes": out.stat().st_size}


def _verify(path: Path, state: dict[str, Any]) -> dict[str, Any]:
    """Load the file the way CheckpointLoaderSimple does and run every part once on a tiny input."""
    import comfy.sample
    import comfy.sd
    import torch

    started = time.perf_counter()
    model, clip, vae, _ = comfy.sd.load_checkpoint_guess_config(str(path), output_vae=True, output_clip=True)
    model_type = type(model.model.model_config).__name__
    if model_type != "SD15":
        raise StandinError(f"ComfyUI detected the stand-in as {model_type}, not SD15")
    loaded = {"model.diffusion_model." + k for k in model.model.diffusion_model.state_dict()}
    written = {k for k in state if k.startswith("model.diffusion_model.")}
    if loaded != written:
        missing, extra = sorted(loaded - written)[:5], sorted(written - loaded)[:5]
        raise StandinError(f"UNet keys differ: missing {missing}, extra {extra}")
    cond, pooled = clip.encode_from_tokens(clip.tokenize("a stand-in check"), return_pooled=True)
    latent = torch.zeros(1, 4, 8, 8)
    noise = torch.randn(latent.shape, generator=torch.Generator().manual_seed(0))
    positive = [[cond, {"pooled_output": pooled}]]
    samples = comfy.sample.sample(model, noise, 2, 5.0, "euler", "normal", positive, positive, latent,
                                  disable_pbar=True)
    image = vae.decode(samples)
    for label, value in (("text encoder", cond), ("sampler", samples), ("VAE decode", image)):
        if not torch.isfinite(value).all():
            raise StandinError(f"the stand-in's {label} output is not finite")
    if tuple(image.shape) != (1, 64, 64, 3):
        raise StandinError(f"VAE decode of an 8x8 latent gave shape {tuple(image.shape)}, expected (1, 64, 64, 3)")
    return {"model_type": model_type, "tensors": len(state), "verify_seconds": round(time.perf_counter() - started, 2)}


def _build_controlnet(comfy_tree: Path, out: Path, checkpoint: Path) -> dict[str, Any]:
    """comfy.cldm.cldm.ControlNet at the stand-in UNet's shape with a 3-channel hint, every tensor written."""
    sys.path.insert(0, str(comfy_tree))
    import comfy.options  # noqa: F401, I001  (first, so args_parsing stays False)
    import comfy.cli_args

    comfy.cli_args.args.cpu = True
    import safetensors.torch
    import torch
    from comfy.cldm.cldm import ControlNet

    started = time.perf_counter()
    gen = torch.Generator().manual_seed(SEED + 1)
    config = {k: v for k, v in UNET_CONFIG.items() if k != "out_channels"}
    net = ControlNet(**config, hint_channels=3, dtype=torch.float32, device="cpu")
    state: dict[str, torch.Tensor] = {}
    for name, tensor in net.state_dict().items():
        filled = _random_like(name, tensor, gen)
        state[name] = (filled.half() if filled.is_floating_point() else filled).contiguous()
    metadata = {
        METADATA_TAG: str(GENERATOR_VERSION),
        "m4_seed": str(SEED + 1),
        "m4_comfyui_version": comfy_version(comfy_tree),
        "m4_standin_kind": "controlnet",
    }
    safetensors.torch.save_file(state, str(out), metadata=metadata)
    built = time.perf_counter() - started
    return {"build_seconds": round(built, 2), **_verify_controlnet(checkpoint, out, state),
            "bytes": out.stat().st_size}


def _verify_controlnet(checkpoint: Path, path: Path, state: dict[str, Any]) -> dict[str, Any]:
    """Load it the way ControlNetLoader does and sample through ControlNetApplyAdvanced with the stand-in
    checkpoint, once plainly and once behind SetUnionControlNetType (a plain ControlNet ignores the type)."""
    import comfy.controlnet
    import comfy.sample
    import comfy.sd
    import torch

    started = time.perf_counter()
    control = comfy.controlnet.load_controlnet(str(path))
    if not isinstance(control, comfy.controlnet.ControlNet):
        raise StandinError(f"ControlNetLoader gave {type(control).__name__}, not a ControlNet")
    loaded = set(control.control_model.state_dict())
    if loaded != set(state):
        raise StandinError(f"ControlNet keys differ: missing {sorted(loaded - set(state))[:5]}, "
                           f"extra {sorted(set(state) - loaded)[:5]}")
    from comfy.cldm.control_types import UNION_CONTROLNET_TYPES

    model, clip, vae, _ = comfy.sd.load_checkpoint_guess_config(str(checkpoint), output_vae=True, output_clip=True)
    cond, pooled = clip.encode_from_tokens(clip.tokenize("a stand-in check"), return_pooled=True)
    positive = [[cond, {"pooled_output": pooled}]]
    hint = torch.rand(1, 64, 64, 3, generator=torch.Generator().manual_seed(1))
    # What SetUnionControlNetType and ControlNetApplyAdvanced do, through ComfyUI's public objects (their
    # node classes are V1 on some versions and V3 on others: no node method is called here).
    union = control.copy()
    union.set_extra_arg("control_type", [UNION_CONTROLNET_TYPES["canny/lineart/anime_lineart/mlsd"]])
    latent = torch.zeros(1, 4, 8, 8)
    noise = torch.randn(latent.shape, generator=torch.Generator().manual_seed(0))
    results = {}
    for label, net in (("plain", control), ("union type", union)):
        pos, neg = _with_controlnet(positive, net, hint, 0.8, (0.0, 0.9), vae), positive
        samples = comfy.sample.sample(model, noise, 2, 5.0, "euler", "normal", pos, neg, latent, disable_pbar=True)
        if not torch.isfinite(samples).all():
            raise StandinError(f"sampling with the stand-in ControlNet ({label}) gave non-finite values")
        results[label] = samples
    plain = comfy.sample.sample(model, noise, 2, 5.0, "euler", "normal", positive, positive, latent,
                                disable_pbar=True)
    if torch.equal(plain, results["plain"]):
        raise StandinError("the stand-in ControlNet did not change the sample: it is not being applied")
    if not torch.allclose(results["plain"], results["union type"]):
        raise StandinError("SetUnionControlNetType changed a plain ControlNet's result; it should be ignored")
    return {"controlnet_class": type(control.control_model).__name__, "tensors": len(state),
            "verify_seconds": round(time.perf_counter() - started, 2)}


def _with_controlnet(conditioning: list, control: Any, hint: Any, strength: float, percent: tuple[float, float],
                     vae: Any) -> list:
    """The conditioning with a ControlNet attached, as ComfyUI's apply node attaches it (on the positive)."""
    net = control.copy().set_cond_hint(hint.movedim(-1, 1), strength, percent, vae=vae)
    out = []
    for emb, extra in conditioning:
        d = dict(extra)
        net.set_previous_controlnet(d.get("control"))
        d["control"], d["control_apply_to_uncond"] = net, False
        out.append([emb, d])
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", nargs=2, metavar=("COMFY_TREE", "OUT"), help=argparse.SUPPRESS)
    parser.add_argument("--build-controlnet", nargs=3, metavar=("COMFY_TREE", "OUT", "CKPT"), help=argparse.SUPPRESS)
    parser.add_argument("--controlnet", action="store_true", help="the stand-in ControlNet instead of the checkpoint")
    parser.add_argument("--out", type=Path, help="write a fresh file here instead of using the cache")
    args = parser.parse_args(argv)
    if args.build:
        print(json.dumps(_build(Path(args.build[0]), Path(args.build[1]))))
        return 0
    if args.build_controlnet:
        tree, out, ckpt = args.build_controlnet
        print(json.dumps(_build_controlnet(Path(tree), Path(out), Path(ckpt))))
        return 0
    started = time.perf_counter()
    kind = "controlnet" if args.controlnet else "checkpoint"
    if args.out:
        ckpt = cached_checkpoint() if args.controlnet else None
        path = generate_checkpoint(load_comfy_host().ensure_comfyui(), args.out, kind=kind, checkpoint=ckpt)
    else:
        path = cached_controlnet() if args.controlnet else cached_checkpoint()
    print(f"{path}  ({path.stat().st_size / 1e6:.0f} MB, {time.perf_counter() - started:.1f} s)", file=sys.stderr)
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
