"""M4EarlyStopSampler (a SAMPLER that stops its loop once converged) and M4AdaptiveKSampler (a drop-in
KSampler with adaptive CFG that returns the schedule it used as data, JSON and a plot)."""

from __future__ import annotations

import json
import logging

import comfy.samplers
import numpy as np
import torch
from comfy.k_diffusion import sampling as kds
from comfy_api.v0_0_2 import io

from ..agents.guidance import EarlyExit, EarlyExitSettings, GuidanceInputError
from .adaptive_cfg import (
    SUBCATEGORY,
    check_latent,
    guidance_inputs,
    patch_model,
    prompt_base,
    settings_from_inputs,
)
from .types import GuidanceSchedule


def sample_early_stop(model, x, sigmas, extra_args=None, callback=None, disable=None, ancestral=False, eta=1.0,
                      s_noise=1.0, tolerance=0.02, patience=2, min_fraction=0.5, report=None):
    """Euler (or Euler ancestral) that stops once the denoised estimate stops changing.

    On a stop the remaining steps are reported to the callback as skipped (so progress bars end at
    100%) and the current denoised estimate is returned as the result.
    """
    extra_args = {} if extra_args is None else extra_args
    rule = EarlyExit(EarlyExitSettings(tolerance=tolerance, patience=int(patience), min_fraction=min_fraction))
    seed = extra_args.get("seed", None)
    noise_sampler = kds.default_noise_sampler(x, seed=seed) if ancestral else None
    s_in = x.new_ones([x.shape[0]])
    n = len(sigmas) - 1
    report = {} if report is None else report
    report.update(steps=n, steps_used=n, stopped_at_step=None)
    for i in range(n):
        denoised = model(x, sigmas[i] * s_in, **extra_args)
        if callback is not None:
            callback({"x": x, "i": i, "sigma": sigmas[i], "sigma_hat": sigmas[i], "denoised": denoised})
        if i < n - 1 and rule.update(denoised, float(sigmas[i]), i / max(n - 1, 1)):
            report.update(steps_used=i + 1, stopped_at_step=i, last_change=rule.last_change)
            logging.info("M4EarlyStopSampler: converged at step %d of %d, %d steps skipped", i + 1, n, n - i - 1)
            if callback is not None:
                for j in range(i + 1, n):
                    callback({"x": denoised, "i": j, "sigma": sigmas[j], "sigma_hat": sigmas[j],
                              "denoised": denoised, "skipped": True})
            return denoised
        if ancestral:
            sigma_down, sigma_up = kds.get_ancestral_step(sigmas[i], sigmas[i + 1], eta=eta)
        else:
            sigma_down, sigma_up = sigmas[i + 1], 0.0
        if sigma_down == 0:
            x = denoised
        else:
            d = kds.to_d(x, sigmas[i], denoised)
            x = x + d * (sigma_down - sigmas[i])
        if sigmas[i + 1] > 0 and sigma_up > 0:
            x = x + noise_sampler(sigmas[i], sigmas[i + 1]) * s_noise * sigma_up
    return x


def early_stop_sampler(ancestral: bool = False, tolerance: float = 0.02, patience: int = 2,
                       min_fraction: float = 0.5, eta: float = 1.0, s_noise: float = 1.0,
                       report: dict | None = None) -> comfy.samplers.KSAMPLER:
    EarlyExitSettings(tolerance=tolerance, patience=int(patience), min_fraction=min_fraction)  # validate now
    opts = {"ancestral": ancestral, "tolerance": tolerance, "patience": int(patience), "min_fraction": min_fraction,
            "eta": eta, "s_noise": s_noise, "report": {} if report is None else report}
    return comfy.samplers.KSAMPLER(sample_early_stop, extra_options=opts)


class M4EarlyStopSampler(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="M4EarlyStopSampler",
            display_name="M4 Early-Stop Sampler",
            category=SUBCATEGORY,
            description="Euler / Euler ancestral that stops once the denoised estimate has converged and returns "
                        "it; the progress bar reports the remaining steps as skipped.",
            inputs=[
                io.Boolean.Input("ancestral", default=False, tooltip="Euler ancestral (adds noise each step)."),
                io.Float.Input("tolerance", default=0.02, min=0.0001, max=1.0, step=0.0005,
                               tooltip="Relative change of the denoised estimate counted as converged."),
                io.Int.Input("patience", default=2, min=1, max=100,
                             tooltip="Consecutive converged steps needed before stopping."),
                io.Float.Input("min_fraction", default=0.5, min=0.0, max=1.0, step=0.05,
                               tooltip="Never stop before this fraction of the steps."),
                io.Float.Input("eta", default=1.0, min=0.0, max=100.0, step=0.01,
                               tooltip="Ancestral only: noise amount."),
                io.Float.Input("s_noise", default=1.0, min=0.0, max=100.0, step=0.01,
                               tooltip="Ancestral only: noise scale."),
            ],
            outputs=[io.Sampler.Output(tooltip="Wire into SamplerCustom / SamplerCustomAdvanced.")],
        )

    @classmethod
    def execute(cls, ancestral, tolerance, patience, min_fraction, eta, s_noise) -> io.NodeOutput:
        return io.NodeOutput(early_stop_sampler(ancestral, tolerance, patience, min_fraction, eta, s_noise))


def plot_schedule(summary: dict, width: int = 640, height: int = 320) -> torch.Tensor:
    """The schedule as an IMAGE [1, H, W, 3] (matplotlib Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    calls = summary.get("calls", [])
    fig, ax = plt.subplots(figsize=(width / 100, height / 100), dpi=100)
    try:
        idx = [c["index"] for c in calls]
        cfg = [c["cfg"] for c in calls]
        ax.plot(idx, cfg, color="#3366cc", lw=1.5, label="effective CFG")
        for c in calls:
            colour = "#999999" if c["skipped"] else ("#3366cc" if c["uncond"] else "#e07b00")
            ax.scatter([c["index"]], [c["cfg"]], color=colour, s=14, zorder=3)
        ax.scatter([], [], color="#e07b00", s=14, label="uncond skipped (cfg 1)")
        if any(c["skipped"] for c in calls):
            ax.scatter([], [], color="#999999", s=14, label="early stop (no model call)")
        ax.set_xlabel("model call")
        ax.set_ylabel("CFG")
        ax.set_title(f"{summary.get('schedule', '')}: {summary.get('model_calls', 0)} calls, "
                     f"{summary.get('uncond_calls', 0)} with uncond, steps used {summary.get('steps_used')}"
                     f"/{summary.get('steps')}", fontsize=9)
        ax.legend(fontsize=7, loc="upper right")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.canvas.draw()
        rgba = np.asarray(fig.canvas.buffer_rgba())
    finally:
        plt.close(fig)
    return torch.from_numpy(rgba[..., :3].astype(np.float32) / 255.0).unsqueeze(0)


def combo_problem(sampler_name: object, scheduler: object) -> str | None:
    """What is wrong with a sampler_name / scheduler value (not one of ComfyUI's), or None."""
    for name, value, options in (("sampler_name", sampler_name, comfy.samplers.KSampler.SAMPLERS),
                                 ("scheduler", scheduler, comfy.samplers.KSampler.SCHEDULERS)):
        if value not in options:
            return f"{name}: {value!r} is not one of ComfyUI's {len(options)} {name.split('_')[0]}s"
    return None


class M4AdaptiveKSampler(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="M4AdaptiveKSampler",
            display_name="M4 Adaptive KSampler",
            category=SUBCATEGORY,
            description="KSampler with adaptive CFG: same inputs as KSampler plus the adaptive options; returns "
                        "the latent and the schedule it actually used (per model call sigma, CFG, uncond).",
            inputs=[
                io.Model.Input("model", tooltip="The model used for denoising the input latent."),
                io.Int.Input("seed", default=0, min=0, max=0xFFFFFFFFFFFFFFFF, control_after_generate=True,
                             tooltip="The random seed used for creating the noise."),
                io.Int.Input("steps", default=20, min=1, max=10000, tooltip="The number of denoising steps."),
                io.Float.Input("cfg", default=8.0, min=0.0, max=100.0, step=0.1, round=0.01,
                               tooltip="Base CFG scale that the schedule multiplies."),
                io.Combo.Input("sampler_name", options=comfy.samplers.KSampler.SAMPLERS,
                               tooltip="The sampling algorithm."),
                io.Combo.Input("scheduler", options=comfy.samplers.KSampler.SCHEDULERS,
                               tooltip="The noise schedule (sigmas)."),
                io.Conditioning.Input("positive", tooltip="Positive conditioning."),
                io.Conditioning.Input("negative", tooltip="Negative conditioning (the unconditional pass)."),
                io.Latent.Input("latent_image", tooltip="The latent to denoise (image or video, any batch)."),
                io.Float.Input("denoise", default=1.0, min=0.0, max=1.0, step=0.01,
                               tooltip="Amount of denoising; < 1 keeps part of the input latent."),
            ] + guidance_inputs(),
            outputs=[
                io.Latent.Output(display_name="latent", tooltip="The denoised latent."),
                GuidanceSchedule.Output(display_name="schedule",
                                        tooltip="The schedule used: per model call sigma, cfg, uncond ran."),
                io.String.Output(display_name="schedule_json", tooltip="The same schedule as JSON text."),
                io.Image.Output(display_name="plot", tooltip="The schedule plotted (CFG per model call)."),
                io.Int.Output(display_name="steps_used", tooltip="Steps that evaluated the model (early stop)."),
            ],
            hidden=[io.Hidden.unique_id],
        )

    @classmethod
    def validate_inputs(cls, sampler_name: str, scheduler: str) -> bool | str:
        """ComfyUI 0.3.75 checks combo values only for V1-style option lists; a V3 Combo is declared as
        ("COMBO", {"options": ...}), so /prompt accepted any sampler_name. Refused here, by name."""
        return combo_problem(sampler_name, scheduler) or True

    @classmethod
    def execute(cls, model, seed, steps, cfg, sampler_name, scheduler, positive, negative, latent_image, denoise,
                schedule, cfg_min, cfg_max, skip_below, quality_adjust, agreement_cutoff, interval_sigma_lo,
                interval_sigma_hi, early_stop, early_stop_tolerance, base_source="sampler cfg",
                prompt="", cap_at_base=False) -> io.NodeOutput:
        import nodes  # ComfyUI's own nodes.py: common_ksampler is exactly what KSampler runs

        if not isinstance(steps, int) or steps < 1:
            raise GuidanceInputError(f"steps: must be an integer >= 1, got {steps!r}")
        problem = combo_problem(sampler_name, scheduler)
        if problem:
            raise GuidanceInputError(problem)
        if not (0.0 <= denoise <= 1.0):
            raise GuidanceInputError(f"denoise: must be in [0, 1], got {denoise}")
        if not isinstance(latent_image, dict) or "samples" not in latent_image:
            raise GuidanceInputError("latent_image: expected a LATENT dict with 'samples'")
        check_latent(latent_image["samples"])
        base = prompt_base(base_source, prompt, positive)
        settings = settings_from_inputs(schedule, cfg_min, cfg_max, skip_below, quality_adjust, agreement_cutoff,
                                        interval_sigma_lo, interval_sigma_hi, early_stop, early_stop_tolerance,
                                        base_override=base, cap_at_base=cap_at_base)
        runs: list[dict] = []
        patched = patch_model(model, settings, node_id=None, sink=runs.append)
        (latent,) = nodes.common_ksampler(patched, seed, steps, cfg, sampler_name, scheduler, positive, negative,
                                          latent_image, denoise=denoise)
        summary = runs[-1] if runs else {"calls": [], "steps": 0, "steps_used": 0, "model_calls": 0}
        summary["base_cfg"] = base if base is not None else cfg
        text = json.dumps(summary)
        panel = {"kind": "schedule", "title": "Adaptive CFG schedule", "data": summary}
        return io.NodeOutput(latent, summary, text, plot_schedule(summary), int(summary["steps_used"]),
                             ui={"m4_panel": [panel]})


NODES = [M4EarlyStopSampler, M4AdaptiveKSampler]


