"""Exact-score benchmark for guidance schedules, through ComfyUI's real samplers.

The model is bench/gmm_model.py's class-conditional Gaussian mixture (closed-form denoiser), so
the only errors are the guidance method's and the sampler's discretisation. Each method samples
every class; samples are scored against the true class-conditional distribution:
  precision  share of samples whose most likely mode belongs to the requested class
  coverage   share of the class's modes that receive at least 20% of their fair share of samples
  swd        sliced Wasserstein-2 distance to fresh true samples (128 projections)
  evals      model rows evaluated per sample (cond + uncond), counted by a forward pre-hook

Methods: references (static CFG at other scales), anchors (static CFG at the base, guidance
interval, Adaptive Guidance, monotone ramps: all at the same base), the seed's S-curve and the
pack's node defaults (read from nodes/adaptive_cfg.py, so this measures what a user gets).

The issue's targets, checked per sampler for the pack's defaults and printed as PASS/FAIL:
  T1  >= 25% fewer evaluations than static CFG at the same base, with precision and SWD equal or better
  T2  no anchor at equal-or-fewer evaluations is better (higher-or-equal precision and lower SWD)
Comparisons are strict: one sample of difference in precision counts.

Usage (from the repository root, ComfyUI importable via scripts/comfy_host.py):
  $PY bench/bench_guidance_gmm.py --samples 256 --steps 20 --spread 0.45 --sampler euler,heun,dpmpp_2m
  $PY bench/bench_guidance_gmm.py --check     # the held-out configurations, one summary row each
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
PACK_DEFAULT = "m4 pack defaults"

# Held-out configurations for --check (the defaults were tuned on seed 0, dim 8, 3x3 modes, spread 0.45,
# euler, 20 steps, base 3; everything below differs from that in at least one respect).
CHECKS: tuple[dict, ...] = (
    dict(seed=0, dim=8, classes=3, modes=3, spread=0.45, sampler="euler", steps=20, base=3.0),  # the tuning case
    dict(seed=1, dim=8, classes=3, modes=3, spread=0.45, sampler="euler", steps=20, base=3.0),
    dict(seed=0, dim=8, classes=3, modes=3, spread=0.45, sampler="heun", steps=20, base=3.0),
    dict(seed=1, dim=8, classes=3, modes=3, spread=0.45, sampler="dpmpp_2m", steps=30, base=3.0),
    dict(seed=0, dim=8, classes=3, modes=3, spread=1.2, sampler="euler", steps=20, base=3.0),
    dict(seed=2, dim=16, classes=4, modes=2, spread=0.45, sampler="euler", steps=20, base=3.0),
    dict(seed=2, dim=8, classes=3, modes=3, spread=0.45, sampler="heun", steps=30, base=3.0),
    dict(seed=3, dim=8, classes=3, modes=3, spread=0.45, sampler="euler", steps=20, base=5.0),
    dict(seed=4, dim=8, classes=3, modes=3, spread=1.2, sampler="dpmpp_2m", steps=20, base=3.0),
    dict(seed=5, dim=4, classes=5, modes=2, spread=0.45, sampler="dpmpp_2m", steps=30, base=3.0),
)


def setup():
    sys.path[:0] = [str(REPO / "scripts"), str(REPO / "tests"), str(REPO)]
    import comfy_host  # scripts/comfy_host.py: finds (or fetches) the pinned ComfyUI
    from host import inprocess

    inprocess.import_comfy(comfy_host.ensure_comfyui())
    inprocess.import_pack()
    return importlib.import_module("m4_director.nodes.adaptive_cfg"), importlib.import_module(
        "m4_director.agents.guidance")


@dataclass
class Method:
    name: str
    role: str  # "ref" | "anchor" | "seed" | "pack"
    cfg: float  # the sampler's cfg (the base for scheduled methods)
    settings: object | None = None  # GuidanceSettings; None = ComfyUI's plain CFG


@dataclass
class Row:
    sampler: str
    method: Method
    evals: float
    cond: float
    uncond: float
    precision: float
    coverage: float
    swd: float
    seconds: float
    extra: dict = field(default_factory=dict)


def pack_default_settings(ac):
    """GuidanceSettings exactly as the nodes build them from their default input values."""
    return ac.settings_from_inputs({})


def methods(ac, g, base: float, full: bool = True) -> list[Method]:
    plain = dict(quality_adjust=False, skip_below=0.0, cfg_min=0.0, cfg_max=100.0)
    dflt = pack_default_settings(ac)
    out: list[Method] = []
    if full:
        out += [Method(f"static cfg {s:g}", "ref", s) for s in (1.0, 2.0, 5.0) if s != base]
    out += [
        Method(f"static cfg {base:g}", "anchor", base),
        Method("interval (0.28, 5.42]", "anchor", base, g.GuidanceSettings(
            schedule="interval", interval_sigma_lo=0.28, interval_sigma_hi=5.42, **plain)),
        Method("adaptive guidance (cos>=0.99)", "anchor", base, g.GuidanceSettings(
            schedule="constant", agreement_cutoff=0.99, **plain)),
        Method("linear up", "anchor", base, g.GuidanceSettings(schedule="linear_up", **plain)),
        Method("cosine up", "anchor", base, g.GuidanceSettings(schedule="cosine_up", **plain)),
    ]
    if full:
        out += [
            Method("linear down", "anchor", base, g.GuidanceSettings(schedule="linear_down", **plain)),
            Method("cosine down", "anchor", base, g.GuidanceSettings(schedule="cosine_down", **plain)),
        ]
    out += [
        Method("seed s-curve (old pack default)", "seed", base, g.GuidanceSettings(
            schedule="s_curve", quality_adjust=True)),
        Method(PACK_DEFAULT, "pack", base, dflt),
    ]
    if full:
        import dataclasses

        out += [
            Method("pack defaults, early stop off", "pack-option", base, dataclasses.replace(dflt, early_exit=None)),
            Method("pack defaults + quality_adjust", "pack-option", base, dataclasses.replace(
                dflt, quality_adjust=True)),
            Method("pack defaults, cosine_up", "pack-option", base, dataclasses.replace(dflt, schedule="cosine_up")),
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


def run_config(ac, g, *, dim: int, classes: int, modes: int, spread: float, std: float, samples: int, steps: int,
               samplers: list[str], scheduler: str, base: float, seed: int, full: bool) -> list[Row]:
    import comfy.sample

    from bench import gmm_model as gm

    spec = gm.make_gmm(dim, classes, modes, std=std, spread=spread, seed=seed)
    model = gm.build_model(spec)
    neg = [[gm.class_context(spec, None), {}]]
    rows: list[Row] = []
    for sampler in samplers:
        for m in methods(ac, g, base, full):
            patched = model if m.settings is None else ac.patch_model(model, m.settings)
            counter = gm.RowCounter(model)
            t0 = time.perf_counter()
            prec, cov, dist = [], [], []
            for cls in range(classes):
                latent = torch.zeros(samples, spec.dim, 1, 1)
                noise = comfy.sample.prepare_noise(latent, seed + cls)
                out = comfy.sample.sample(patched, noise, steps, m.cfg, sampler, scheduler,
                                          [[gm.class_context(spec, cls), {}]], neg, latent,
                                          seed=seed + cls, disable_pbar=True)
                p, c, d = score(gm, spec, out, cls, seed)
                prec.append(p)
                cov.append(c)
                dist.append(d)
            counter.close()
            n = samples * classes
            rows.append(Row(sampler, m, (counter.cond + counter.uncond) / n, counter.cond / n, counter.uncond / n,
                            sum(prec) / len(prec), sum(cov) / len(cov), sum(dist) / len(dist),
                            time.perf_counter() - t0, {"n": n}))
    return rows


@dataclass
class Verdict:
    saving: float
    t1: bool
    t1_text: str
    t2: bool
    t2_text: str


def verdict(rows: list[Row], base: float) -> Verdict:
    """The two targets for the pack's defaults against the rows of one sampler."""
    pack = next(r for r in rows if r.method.name == PACK_DEFAULT)
    static = next(r for r in rows if r.method.name == f"static cfg {base:g}")
    n = pack.extra["n"]
    saving = 1.0 - pack.evals / static.evals
    p_ok = pack.precision >= static.precision - 1e-12
    s_ok = pack.swd <= static.swd
    t1 = saving >= 0.25 and p_ok and s_ok
    dp = round((pack.precision - static.precision) * n)
    t1_text = (f"{saving:.0%} fewer evals ({pack.evals:.1f} vs {static.evals:.1f}); precision {pack.precision:.4f} vs "
               f"{static.precision:.4f} ({dp:+d} of {n} samples) {'ok' if p_ok else 'WORSE'}; SWD {pack.swd:.4f} vs "
               f"{static.swd:.4f} {'ok' if s_ok else 'WORSE'}")
    cheaper = [r for r in rows if r.method.role == "anchor" and r.evals <= pack.evals + 1e-9]
    beaten_by = [r for r in cheaper if (r.precision >= pack.precision and r.swd < pack.swd)
                 or (r.precision > pack.precision and r.swd <= pack.swd)]
    t2 = not beaten_by
    if not cheaper:
        t2_text = "no anchor runs at equal or fewer evaluations"
    elif beaten_by:
        t2_text = "beaten by " + "; ".join(f"{r.method.name} ({r.evals:.1f} evals, P {r.precision:.4f}, "
                                           f"SWD {r.swd:.4f})" for r in beaten_by)
    else:
        t2_text = "anchors at <= evals: " + "; ".join(
            f"{r.method.name} ({r.evals:.1f} evals, P {r.precision:.4f}, SWD {r.swd:.4f})" for r in cheaper)
    return Verdict(saving, t1, t1_text, t2, t2_text)


def print_table(rows: list[Row]) -> None:
    print("| sampler | method | role | evals/sample (cond+uncond) | class precision | mode coverage | SWD |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        name = f"**{r.method.name}**" if r.method.role == "pack" else r.method.name
        print(f"| {r.sampler} | {name} | {r.method.role} | {r.evals:.1f} ({r.cond:.1f}+{r.uncond:.1f}) | "
              f"{r.precision:.4f} | {r.coverage:.2f} | {r.swd:.4f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dim", type=int, default=8)
    ap.add_argument("--classes", type=int, default=3)
    ap.add_argument("--modes", type=int, default=3)
    ap.add_argument("--spread", type=float, default=0.45, help="std of the mode centres (smaller = classes overlap)")
    ap.add_argument("--std", type=float, default=0.35, help="std of each mode")
    ap.add_argument("--samples", type=int, default=256, help="samples per class")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--sampler", default="euler", help="comma list, e.g. euler,heun,dpmpp_2m")
    ap.add_argument("--scheduler", default="karras")
    ap.add_argument("--base", type=float, default=3.0, help="base CFG of the scheduled methods")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--check", action="store_true", help="run the held-out configurations (summary only)")
    ap.add_argument("--out", default=str(REPO / "bench" / "out"))
    args = ap.parse_args()
    torch.set_num_threads(1)  # the machine is shared; the GMM model is tiny anyway
    ac, g = setup()
    d = ac.DEFAULTS
    print(f"pack defaults: schedule={d['schedule']} skip_below={d['skip_below']} "
          f"quality_adjust={d['quality_adjust']} early_stop={d['early_stop']} (tol {d['early_stop_tolerance']}) "
          f"cfg_min={d['cfg_min']} cfg_max={d['cfg_max']}")
    if args.check:
        check(ac, g, args)
        return
    rows = run_config(ac, g, dim=args.dim, classes=args.classes, modes=args.modes, spread=args.spread, std=args.std,
                      samples=args.samples, steps=args.steps, samplers=args.sampler.split(","),
                      scheduler=args.scheduler, base=args.base, seed=args.seed, full=True)
    print(f"\nGMM dim={args.dim} classes={args.classes} modes={args.modes} samples/class={args.samples} "
          f"spread={args.spread} std={args.std} steps={args.steps} scheduler={args.scheduler} base cfg={args.base} "
          f"seed={args.seed}\n")
    print_table(rows)
    print()
    for sampler in args.sampler.split(","):
        v = verdict([r for r in rows if r.sampler == sampler], args.base)
        print(f"{sampler}: T1 (>=25% fewer evals than static cfg {args.base:g}, precision and SWD equal or better): "
              f"{'PASS' if v.t1 else 'FAIL'} - {v.t1_text}")
        print(f"{sampler}: T2 (no anchor at equal-or-fewer evals is better): {'PASS' if v.t2 else 'FAIL'} - "
              f"{v.t2_text}")
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    plot(rows, out_dir / "guidance_gmm.png")
    print(f"\nplot: {out_dir / 'guidance_gmm.png'}")


def check(ac, g, args) -> None:
    print("\n| config | evals pack / static | saving | precision pack / static | SWD pack / static | "
          "T1 | T2 | note |")
    print("|---|---|---|---|---|---|---|---|")
    passes = [0, 0]
    for i, c in enumerate(CHECKS):
        rows = run_config(ac, g, dim=c["dim"], classes=c["classes"], modes=c["modes"], spread=c["spread"],
                          std=args.std, samples=args.samples, steps=c["steps"], samplers=[c["sampler"]],
                          scheduler=args.scheduler, base=c["base"], seed=c["seed"], full=False)
        v = verdict(rows, c["base"])
        pack = next(r for r in rows if r.method.name == PACK_DEFAULT)
        static = next(r for r in rows if r.method.name == f"static cfg {c['base']:g}")
        label = (f"{'tune: ' if i == 0 else ''}seed {c['seed']}, dim {c['dim']}, {c['classes']}x{c['modes']}, "
                 f"spread {c['spread']}, {c['sampler']} {c['steps']}, base {c['base']:g}")
        note = "" if v.t2 else v.t2_text
        passes[0] += v.t1
        passes[1] += v.t2
        print(f"| {label} | {pack.evals:.1f} / {static.evals:.1f} | {v.saving:.0%} | {pack.precision:.4f} / "
              f"{static.precision:.4f} | {pack.swd:.4f} / {static.swd:.4f} | {'PASS' if v.t1 else 'FAIL'} | "
              f"{'PASS' if v.t2 else 'FAIL'} | {note} |", flush=True)
    print(f"\nT1 passed {passes[0]}/{len(CHECKS)}, T2 passed {passes[1]}/{len(CHECKS)} "
          f"({args.samples} samples per class)")


def plot(rows: list[Row], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    samplers = sorted({r.sampler for r in rows})
    fig, axes = plt.subplots(len(samplers), 2, figsize=(12, 4.5 * len(samplers)), squeeze=False)
    for row_axes, s in zip(axes, samplers, strict=True):
        for r in (r for r in rows if r.sampler == s):
            for ax, key in zip(row_axes, ("swd", "precision"), strict=True):
                ax.scatter(r.evals, getattr(r, key), marker="*" if r.method.role == "pack" else "o")
                ax.annotate(r.method.name, (r.evals, getattr(r, key)), fontsize=7)
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
