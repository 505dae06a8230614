"""Exact-score benchmark for guidance schedules, through ComfyUI's real samplers.

The model is bench/gmm_model.py's class-conditional Gaussian mixture (closed-form denoiser), so
the only errors are the guidance method's and the sampler's discretisation. Each method samples
every class; samples are scored against the true class-conditional distribution:
  precision  share of samples whose most likely mode belongs to the requested class
  coverage   share of the class's modes that receive at least 20% of their fair share of samples
  swd        sliced Wasserstein-2 distance to fresh true samples (128 projections)
  evals      model rows evaluated per sample (cond + uncond), counted by a forward pre-hook

Usage (from the repository root, ComfyUI importable via scripts/comfy_host.py):
  $PY bench/bench_guidance_gmm.py --dim 8 --classes 3 --modes 3 --samples 256 --steps 20 --sampler euler
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]


def setup():
    sys.path[:0] = [str(REPO / "scripts"), str(REPO / "tests"), str(REPO)]
    import comfy_host  # scripts/comfy_host.py: finds (or fetches) the pinned ComfyUI
    from host import inprocess

    inprocess.import_comfy(comfy_host.ensure_comfyui())
    inprocess.import_pack()
    return importlib.import_module("m4_director.nodes.adaptive_cfg"), importlib.import_module(
        "m4_director.agents.guidance")


def methods(g, base: float, early_tol: float) -> list[tuple[str, float, object | None]]:
    """(name, sampler cfg, GuidanceSettings or None for ComfyUI's plain CFG)."""
    plain = dict(quality_adjust=False, skip_below=0.0, cfg_min=0.0, cfg_max=100.0)
    out: list[tuple[str, float, object | None]] = [(f"static cfg {s:g}", s, None) for s in (1.0, 2.0, base, 5.0)]
    out += [
        ("interval (0.28, 5.42]", base, g.GuidanceSettings(schedule="interval", interval_sigma_lo=0.28,
                                                            interval_sigma_hi=5.42, **plain)),
        ("adaptive guidance (cos>=0.99)", base, g.GuidanceSettings(schedule="constant", agreement_cutoff=0.99,
                                                                    **plain)),
        ("linear up", base, g.GuidanceSettings(schedule="linear_up", **plain)),
        ("linear down", base, g.GuidanceSettings(schedule="linear_down", **plain)),
        ("cosine up", base, g.GuidanceSettings(schedule="cosine_up", **plain)),
        ("cosine down", base, g.GuidanceSettings(schedule="cosine_down", **plain)),
        ("seed s-curve", base, g.GuidanceSettings(schedule="s_curve", **plain)),
        ("m4 adaptive (defaults)", base, g.GuidanceSettings()),
        ("m4 adaptive + early stop", base, g.GuidanceSettings(
            early_exit=g.EarlyExitSettings(tolerance=early_tol))),
        ("m4 adaptive cosine_up + early stop", base, g.GuidanceSettings(
            schedule="cosine_up", early_exit=g.EarlyExitSettings(tolerance=early_tol))),
    ]
    return out


def swd(a: torch.Tensor, b: torch.Tensor, projections: int = 128, seed: int = 7) -> float:
    gen = torch.Generator().manual_seed(seed)
    d = torch.randn(a.shape[1], projections, generator=gen, dtype=torch.float64)
    d /= d.norm(dim=0, keepdim=True)
    pa, _ = torch.sort(a.double() @ d, dim=0)
    pb, _ = torch.sort(b.double() @ d, dim=0)
    return float(((pa - pb) ** 2).mean().sqrt())


def score(gm, spec, samples: torch.Tensor, cls: int, seed: int) -> tuple[float, float, float]:
    x = samples.reshape(samples.shape[0], -1).double()
    logit = -torch.cdist(x, spec.means).square()  # equal weights and stds: likelihood order = distance order
    mode = logit.argmax(dim=1)
    precision = float((spec.mode_class[mode] == cls).double().mean())
    modes = torch.nonzero(spec.mode_class == cls).flatten()
    fair = x.shape[0] / len(modes)
    coverage = float(sum(int((mode == m).sum()) >= 0.2 * fair for m in modes) / len(modes))
    return precision, coverage, swd(x, gm.sample_true(spec, cls, x.shape[0], seed=seed + 1000 + cls))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dim", type=int, default=8)
    ap.add_argument("--classes", type=int, default=3)
    ap.add_argument("--modes", type=int, default=3)
    ap.add_argument("--spread", type=float, default=1.2, help="std of the mode centres (smaller = classes overlap)")
    ap.add_argument("--std", type=float, default=0.35, help="std of each mode")
    ap.add_argument("--samples", type=int, default=256, help="samples per class")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--sampler", default="euler", help="comma list, e.g. euler,heun,dpmpp_2m")
    ap.add_argument("--scheduler", default="karras")
    ap.add_argument("--base", type=float, default=3.0, help="base CFG of the scheduled methods")
    ap.add_argument("--early-tol", type=float, default=0.02)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(REPO / "bench" / "out"))
    args = ap.parse_args()

    ac, g = setup()
    import comfy.sample

    from bench import gmm_model as gm

    spec = gm.make_gmm(args.dim, args.classes, args.modes, std=args.std, spread=args.spread, seed=args.seed)
    model = gm.build_model(spec)
    neg = [[gm.class_context(spec, None), {}]]
    rows: list[dict] = []
    for sampler in args.sampler.split(","):
        for name, cfg, st in methods(g, args.base, args.early_tol):
            m = model if st is None else ac.patch_model(model, st)
            counter = gm.RowCounter(model)
            t0 = time.perf_counter()
            prec, cov, dist = [], [], []
            for cls in range(args.classes):
                latent = torch.zeros(args.samples, spec.dim, 1, 1)
                noise = comfy.sample.prepare_noise(latent, args.seed + cls)
                out = comfy.sample.sample(m, noise, args.steps, cfg, sampler, args.scheduler,
                                          [[gm.class_context(spec, cls), {}]], neg, latent,
                                          seed=args.seed + cls, disable_pbar=True)
                p, c, d = score(gm, spec, out, cls, args.seed)
                prec.append(p)
                cov.append(c)
                dist.append(d)
            counter.close()
            n = args.samples * args.classes
            rows.append({"sampler": sampler, "method": name, "evals": (counter.cond + counter.uncond) / n,
                         "cond": counter.cond / n, "uncond": counter.uncond / n,
                         "precision": sum(prec) / len(prec), "coverage": sum(cov) / len(cov),
                         "swd": sum(dist) / len(dist), "seconds": time.perf_counter() - t0})
    print(f"\nGMM dim={args.dim} classes={args.classes} modes={args.modes} samples/class={args.samples} "
          f"spread={args.spread} std={args.std} steps={args.steps} scheduler={args.scheduler} base cfg={args.base}\n")
    print("| sampler | method | evals/sample (cond+uncond) | class precision | mode coverage | SWD |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['sampler']} | {r['method']} | {r['evals']:.1f} ({r['cond']:.0f}+{r['uncond']:.0f}) | "
              f"{r['precision']:.3f} | {r['coverage']:.2f} | {r['swd']:.4f} |")
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    plot(rows, out_dir / "guidance_gmm.png")
    print(f"\nplot: {out_dir / 'guidance_gmm.png'}")


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    samplers = sorted({r["sampler"] for r in rows})
    fig, axes = plt.subplots(len(samplers), 2, figsize=(12, 4.5 * len(samplers)), squeeze=False)
    for row_axes, s in zip(axes, samplers, strict=True):
        for r in (r for r in rows if r["sampler"] == s):
            for ax, key in zip(row_axes, ("swd", "precision"), strict=True):
                ax.scatter(r["evals"], r[key])
                ax.annotate(r["method"], (r["evals"], r[key]), fontsize=7)
        for ax, key in zip(row_axes, ("sliced Wasserstein (lower better)", "class precision"), strict=True):
            ax.set_xlabel("model rows per sample")
            ax.set_ylabel(key)
            ax.set_title(f"{s}: {key}")
            ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    main()
