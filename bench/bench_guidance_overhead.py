"""Per-step overhead of the adaptive-CFG patch against ComfyUI's plain CFG, same model, same run.

Plain and patched runs are interleaved (A B C A B C ...) so drift in machine load hits all alike.
Variants: plain CFG; the patch with a constant schedule and no adjustment (pure wrapper cost; its
result must equal plain CFG); the patch with the quality signals on (cond/uncond cosine and
spread every call) and skip_below 0 (so the model work is identical and only overhead differs);
the same with early-exit bookkeeping. Memory: peak RSS growth and the tensors a run keeps.

  $PY bench/bench_guidance_overhead.py --width 96 --latent 32 --steps 10 --reps 5
"""

from __future__ import annotations

import argparse
import importlib
import resource
import statistics
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]


def build(width: int):
    sys.path[:0] = [str(REPO / "scripts"), str(REPO / "tests"), str(REPO)]
    import comfy_host
    from host import inprocess

    comfy = inprocess.import_comfy(comfy_host.ensure_comfyui())
    inprocess.import_pack()
    cfg = {k: v for k, v in inprocess.TINY_UNET.items() if k != "attention_resolutions"}
    cfg["model_channels"] = width
    config = comfy.supported_models.SD15(cfg)
    config.unet_config["num_heads"] = 4
    config.unet_config["num_head_channels"] = -1
    config.set_inference_dtype(torch.float32, None)
    model = config.get_model({})
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in model.diffusion_model.named_parameters():
            if p.ndim == 1:
                p.copy_(torch.zeros_like(p) if "bias" in name else torch.ones_like(p))
            else:
                p.copy_(torch.randn(p.shape, generator=gen) / p[0].numel() ** 0.5)
    model.eval()
    dev = comfy.model_management.get_torch_device()
    patcher = comfy.model_patcher.ModelPatcher(model, load_device=dev, offload_device=dev)
    return comfy, patcher, importlib.import_module("m4_director.nodes.adaptive_cfg"), importlib.import_module(
        "m4_director.agents.guidance")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--width", type=int, default=96, help="UNet model_channels")
    ap.add_argument("--latent", type=int, default=32, help="latent height = width")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--cfg", type=float, default=6.0)
    args = ap.parse_args()
    torch.set_num_threads(max(torch.get_num_threads(), 1))
    comfy, model, ac, g = build(args.width)
    pos = [[torch.randn(1, 4, 32, generator=torch.Generator().manual_seed(1)), {}]]
    neg = [[torch.randn(1, 4, 32, generator=torch.Generator().manual_seed(2)), {}]]
    latent = torch.zeros(1, 4, args.latent, args.latent)
    noise = comfy.sample.prepare_noise(latent, 0)
    plain = dict(schedule="constant", skip_below=0.0, cfg_min=0.0, cfg_max=100.0)
    variants = {
        "plain CFG": model,
        "patch constant, no adjust": ac.patch_model(model, g.GuidanceSettings(quality_adjust=False, **plain)),
        "patch constant + quality signals": ac.patch_model(model, g.GuidanceSettings(quality_adjust=True, **plain)),
        "patch + quality + early-exit check": ac.patch_model(model, g.GuidanceSettings(
            quality_adjust=True, early_exit=g.EarlyExitSettings(tolerance=1e-12), **plain)),
    }

    def run(m):
        return comfy.sample.sample(m, noise, args.steps, args.cfg, "euler", "normal", pos, neg, latent, seed=0,
                                   disable_pbar=True)

    results = {k: run(m) for k, m in variants.items()}  # warm-up, and the equality check
    times: dict[str, list[float]] = {k: [] for k in variants}
    rss: dict[str, int] = {}
    for _ in range(args.reps):
        for k, m in variants.items():
            before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            t0 = time.perf_counter()
            run(m)
            times[k].append((time.perf_counter() - t0) / args.steps)
            rss[k] = max(rss.get(k, 0), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
    base = statistics.median(times["plain CFG"])
    latent_bytes = latent.numel() * 4
    print(f"\nUNet width {args.width}, latent {args.latent}x{args.latent}, {args.steps} euler steps, cfg {args.cfg}, "
          f"{args.reps} interleaved reps, torch threads {torch.get_num_threads()}\n")
    print("| variant | median ms/step | ratio vs plain | max diff vs plain | peak RSS growth (KiB) |")
    print("|---|---|---|---|---|")
    for k in variants:
        med = statistics.median(times[k])
        diff = float((results[k] - results["plain CFG"]).abs().max())
        print(f"| {k} | {med * 1000:.1f} | {med / base:.3f} | {diff:.2e} | {rss[k]} |")
    print(f"\nTensors a patched run keeps: 1 latent copy for early exit (last denoised estimate) = "
          f"{latent_bytes / 1024:.1f} KiB; the schedule record is ~100 bytes per model call.")


if __name__ == "__main__":
    main()
