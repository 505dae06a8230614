"""Per-step overhead of the adaptive-CFG patch against ComfyUI's plain CFG, measured three ways.

The machine this runs on is shared, so wall-clock timings are noisy. torch is pinned to one thread
and every figure is a median over many interleaved repetitions:

1. End to end (UNet of tens of ms per step): each repetition runs plain CFG and every patched
   variant back to back in a shuffled order; the per-repetition ratio patched/plain is the sample,
   reported as median and interquartile range. The variants do identical model work (constant
   schedule, skip_below 0, no stop) so any difference is overhead, and their results must equal plain
   CFG's (checked: max diff). Under load the IQR is usually wider than the overhead itself.
2. Own code, timed directly: perf_counter around the wrapper's work outside the model call
   (nodes.adaptive_cfg.adaptive_step minus the time spent in the call it wraps), per model call.
3. Near-zero-cost model: the same A/B with bench/gmm_model.py's closed-form model on one row, where
   the model costs microseconds, so the per-step difference is the whole patch cost including
   ComfyUI's wrapper dispatch.
(2) and (3) divided by the plain CFG step of (1) are the honest "fraction of a plain CFG step".

  $PY bench/bench_guidance_overhead.py --width 64 --latent 24 --steps 10 --reps 30   (~2-4 min under load)
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before torch: one thread, less contention noise
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse  # noqa: E402
import importlib  # noqa: E402
import math  # noqa: E402
import random  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
FULL = "patch + early-exit check"
RESIDUAL = "patch + residual early-exit check + guidance gap"
ESTIMATE = "patch + residual early-exit check + estimate gap (gap_measure estimate)"


def setup():
    sys.path[:0] = [str(REPO / "scripts"), str(REPO / "tests"), str(REPO)]
    import comfy_host
    from host import inprocess

    comfy = inprocess.import_comfy(comfy_host.ensure_comfyui())
    inprocess.import_pack()
    return comfy, inprocess, importlib.import_module("m4_director.nodes.adaptive_cfg"), importlib.import_module(
        "m4_director.agents.guidance")


def variants(ac, g, model) -> dict:
    same_work = dict(schedule="constant", skip_below=0.0, cfg_min=0.0, cfg_max=100.0)
    never_off = dict(gap_wait_margin=math.inf, gap_peak_fraction=0.0)
    # The controller measures the quality signals on every call whether or not quality_adjust uses them,
    # so FULL pays for all of the patch's per-call work; a 1e-12 tolerance keeps the early-exit check
    # running without ever stopping. quality_adjust itself is left off: it changes the scale, so the
    # result would no longer equal plain CFG's and the equality check would mean nothing.
    return {
        "plain CFG": model,
        "patch (schedule lookup + signals)": ac.patch_model(model, g.GuidanceSettings(
            quality_adjust=False, **same_work)),
        FULL: ac.patch_model(model, g.GuidanceSettings(
            quality_adjust=False, early_exit=g.EarlyExitSettings(tolerance=1e-12), **same_work)),
        # the residual rule and the guidance gap read norms on every call; a gap cutoff of 10 with the
        # gap window's wait and peak rules off never turns guidance off, so the result still equals plain CFG's
        RESIDUAL: ac.patch_model(model, g.GuidanceSettings(
            quality_adjust=False, gap_cutoff=10.0, **never_off,
            early_exit=g.EarlyExitSettings(tolerance=1e-12, rule="residual"), **same_work)),
        # the estimate gap (batch max) instead; the spread-matched final estimate runs once, at a stop
        ESTIMATE: ac.patch_model(model, g.GuidanceSettings(
            quality_adjust=False, gap_cutoff=10.0, gap_measure="estimate", **never_off,
            early_exit=g.EarlyExitSettings(tolerance=1e-12, rule="residual", estimate="spread matched"),
            **same_work)),
    }


def ab(run, models: dict, reps: int, steps: int, seed: int = 0) -> tuple[dict, dict]:
    """Interleaved, shuffled repetitions: per-variant seconds/step and per-repetition ratio vs plain."""
    rng = random.Random(seed)
    per_step: dict[str, list[float]] = {k: [] for k in models}
    ratio: dict[str, list[float]] = {k: [] for k in models if k != "plain CFG"}
    for _ in range(reps):
        order = list(models)
        rng.shuffle(order)
        t: dict[str, float] = {}
        for k in order:
            t0 = time.perf_counter()
            run(models[k])
            t[k] = (time.perf_counter() - t0) / steps
            per_step[k].append(t[k])
        for k in ratio:
            ratio[k].append(t[k] / t["plain CFG"])
    return per_step, ratio


def quartiles(v: list[float]) -> tuple[float, float, float]:
    q = statistics.quantiles(v, n=4)
    return q[0], statistics.median(v), q[2]


def own_code_time(ac, run, model, steps: int, reps: int) -> list[float]:
    """Seconds per model call spent in adaptive_step outside the wrapped model call."""
    rt = importlib.import_module("m4_director.nodes.adaptive_runtime")  # where the wrappers look it up
    original = rt.adaptive_step
    own: list[float] = []

    def timed(call_next, state, *args, **kwargs):
        inner = [0.0]

        def timed_next(*a, **k):
            t0 = time.perf_counter()
            try:
                return call_next(*a, **k)
            finally:
                inner[0] += time.perf_counter() - t0

        t0 = time.perf_counter()
        out = original(timed_next, state, *args, **kwargs)
        own.append(time.perf_counter() - t0 - inner[0])
        return out

    rt.adaptive_step = timed  # the wrappers look the function up in their module at call time
    try:
        for _ in range(reps):
            run(model)
    finally:
        rt.adaptive_step = original
    return own


def t_norm_lookup_time(ac, model_sampling, sigmas: list[float]) -> float:
    """Seconds per sigma -> t_norm conversion (the per-model noise-level table lookup) for this model."""
    t0 = time.perf_counter()
    for s in sigmas:
        ac.sigma_to_t_norm(model_sampling, s)
    return (time.perf_counter() - t0) / len(sigmas)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--width", type=int, default=64, help="UNet model_channels (a multiple of 32)")
    ap.add_argument("--latent", type=int, default=24, help="latent height = width")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--reps", type=int, default=30, help="interleaved repetitions with the UNet")
    ap.add_argument("--cheap-reps", type=int, default=200, help="repetitions with the near-zero-cost model")
    ap.add_argument("--cfg", type=float, default=6.0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    comfy, inprocess, ac, g = setup()
    from bench import gmm_model as gm

    # 1. end to end with a UNet
    unet = inprocess.tiny_model(comfy, seed=0, model_channels=args.width)
    pos = [[torch.randn(1, 4, 32, generator=torch.Generator().manual_seed(1)), {}]]
    neg = [[torch.randn(1, 4, 32, generator=torch.Generator().manual_seed(2)), {}]]
    latent = torch.zeros(1, 4, args.latent, args.latent)
    noise = comfy.sample.prepare_noise(latent, 0)

    def run(m):
        return comfy.sample.sample(m, noise, args.steps, args.cfg, "euler", "normal", pos, neg, latent, seed=0,
                                   disable_pbar=True)

    models = variants(ac, g, unet)
    results = {k: run(m) for k, m in models.items()}  # warm-up, and the equality check
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    per_step, ratio = ab(run, models, args.reps, args.steps)
    rss_growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before
    plain_step = statistics.median(per_step["plain CFG"])
    print(f"\n1. End to end: UNet width {args.width}, latent {args.latent}x{args.latent}, {args.steps} euler steps, "
          f"cfg {args.cfg}, {args.reps} interleaved shuffled reps, torch threads {torch.get_num_threads()}, "
          f"load average {os.getloadavg()[0]:.1f}\n")
    print("| variant | median ms/step | ratio vs plain: median [IQR] | max diff vs plain |")
    print("|---|---|---|---|")
    for k in models:
        med = statistics.median(per_step[k]) * 1000
        diff = float((results[k] - results["plain CFG"]).abs().max())
        if k == "plain CFG":
            print(f"| {k} | {med:.2f} | 1 | 0 |")
            continue
        q1, q2, q3 = quartiles(ratio[k])
        print(f"| {k} | {med:.2f} | {q2:.4f} [{q1:.4f}, {q3:.4f}] | {diff:.2e} |")

    # 2. the wrapper's own code, timed directly (the full variant: signals + early-exit check)
    full = models[FULL]
    own = own_code_time(ac, run, full, args.steps, max(args.reps // 5, 3))
    o1, o2, o3 = quartiles(own)
    print(f"\n2. Own code per model call (perf_counter, {len(own)} calls, signals + early-exit check): "
          f"median {o2 * 1e6:.0f} us [IQR {o1 * 1e6:.0f}, {o3 * 1e6:.0f}] = {o2 / plain_step:.2%} of the plain "
          f"CFG step ({plain_step * 1000:.1f} ms)")
    for name in (RESIDUAL, ESTIMATE):
        q1, q2, q3 = quartiles(own_code_time(ac, run, models[name], args.steps, max(args.reps // 5, 3)))
        print(f"   {name}: median {q2 * 1e6:.0f} us [IQR {q1 * 1e6:.0f}, {q3 * 1e6:.0f}] = {q2 / plain_step:.2%}")
    sig = [float(v) for v in torch.linspace(0.05, 14.0, 40)]
    lookup = statistics.median(t_norm_lookup_time(ac, unet.model.model_sampling, sig) for _ in range(5))
    print(f"   of which the sigma -> t_norm lookup (per-model table over percent_to_sigma, one per new sigma): "
          f"{lookup * 1e6:.0f} us = {lookup / plain_step:.2%}; the rest (schedule, signals, early-exit check, "
          f"record): {(o2 - lookup) * 1e6:.0f} us = {(o2 - lookup) / plain_step:.2%}")

    # 3. near-zero-cost model: the whole patch cost per step, ComfyUI's wrapper dispatch included
    spec = gm.make_gmm(dim=4, classes=2, modes=1, seed=0)
    cheap = gm.build_model(spec)
    c_lat = torch.zeros(1, spec.dim, 1, 1)
    c_noise = comfy.sample.prepare_noise(c_lat, 0)
    c_pos = [[gm.class_context(spec, 0), {}]]
    c_neg = [[gm.class_context(spec, None), {}]]

    def run_cheap(m):
        return comfy.sample.sample(m, c_noise, args.steps, args.cfg, "euler", "karras", c_pos, c_neg, c_lat, seed=0,
                                   disable_pbar=True)

    cheap_models = variants(ac, g, cheap)
    for m in cheap_models.values():
        run_cheap(m)
    c_step, _ = ab(run_cheap, cheap_models, args.cheap_reps, args.steps, seed=1)
    c_plain = statistics.median(c_step["plain CFG"])
    print(f"\n3. Near-zero-cost model (closed-form GMM, one row, EDM-continuous sampling whose percent_to_sigma is "
          f"cheaper than the UNet's discrete one; {args.cheap_reps} interleaved reps): plain CFG "
          f"{c_plain * 1e6:.0f} us/step\n")
    print("| variant | extra us/step vs plain (median) | as a share of the UNet's plain CFG step |")
    print("|---|---|---|")
    for k in cheap_models:
        if k == "plain CFG":
            continue
        extra = statistics.median(c_step[k]) - c_plain
        print(f"| {k} | {extra * 1e6:.0f} | {extra / plain_step:.2%} |")

    kept = latent.numel() * 4
    print(f"\nMemory: peak RSS growth over the timed runs {rss_growth} KiB. Tensors a patched run keeps: the last "
          f"denoised estimate for early exit (1 latent, {kept / 1024:.1f} KiB here) and, after a stop, the frozen "
          f"estimate (1 more latent); the quality signals keep floats; the schedule record is ~100 bytes per call. "
          f"No extra model evaluations: (1)'s variants evaluate exactly what plain CFG does (max diff above).")


if __name__ == "__main__":
    main()
