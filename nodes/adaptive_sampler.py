"""M4EarlyStopSampler (a SAMPLER that stops its loop once converged) and M4AdaptiveKSampler (a drop-in
KSampler with adaptive CFG that returns the schedule it used as data, JSON and a plot)."""

from __future__ import annotations

import json
import logging
from typing import Any

import comfy.samplers
import numpy as np
import torch
from comfy.k_diffusion import sampling as kds
from comfy_api.v0_0_2 import io

from ..agents.guidance import EarlyExit, EarlyExitSettings, GuidanceInputError
from ..agents.guidance.data import EARLY_STOP_RULES, guidance_data, tunable
from ..agents.guidance.schedule_plot import plot_schedule_rgb
from .adaptive_inputs import SUBCATEGORY, guidance_inputs, node_settings
from .adaptive_runtime import check_latent, patch_model
from .combo_check import combo_verdict, require_combos
from .types import GuidanceSchedule

_TOL = guidance_data().options["early_stop_tolerance"]


def sample_early_stop(model, x, sigmas, extra_args=None, callback=None, disable=None, ancestral=False, eta=1.0,
                      s_noise=1.0, tolerance=None, patience=None, min_fraction=None, report=None,
                      rule="denoised change"):
    """Euler (or Euler ancestral) that stops once the denoised estimate stops changing.

    On a stop the remaining steps are reported to the callback as skipped (so progress bars end at
    100%) and the current denoised estimate is returned as the result.
    """
    extra_args = {} if extra_args is None else extra_args
    rule = EarlyExit(_stop_settings(tolerance, patience, min_fraction, rule))
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
        if i < n - 1 and rule.update(denoised, float(sigmas[i]), i / max(n - 1, 1), x):
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


def _stop_settings(tolerance: float | None, patience: int | None, min_fraction: float | None,
                   rule: str) -> EarlyExitSettings:
    d = EarlyExitSettings()  # the data file's defaults
    return EarlyExitSettings(tolerance=d.tolerance if tolerance is None else tolerance,
                             patience=d.patience if patience is None else int(patience),
                             min_fraction=d.min_fraction if min_fraction is None else min_fraction, rule=rule)


def early_stop_sampler(ancestral: bool = False, tolerance: float | None = None, patience: int | None = None,
                       min_fraction: float | None = None, eta: float = 1.0, s_noise: float = 1.0,
                       report: dict | None = None, rule: str = "denoised change") -> comfy.samplers.KSAMPLER:
    st = _stop_settings(tolerance, patience, min_fraction, rule)  # validate now, naming the input
    opts = {"ancestral": ancestral, "tolerance": st.tolerance, "patience": st.patience,
            "min_fraction": st.min_fraction, "eta": eta, "s_noise": s_noise,
            "report": {} if report is None else report, "rule": st.rule}
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
                io.Float.Input("tolerance", default=_TOL.default, min=_TOL.lo, max=_TOL.hi, step=_TOL.step,
                               tooltip="Relative change counted as converged (see rule)."),
                io.Int.Input("patience", default=int(tunable("early_stop_patience")), min=1, max=100,
                             tooltip="Consecutive converged steps needed before stopping."),
                io.Float.Input("min_fraction", default=tunable("early_stop_min_fraction"), min=0.0, max=1.0,
                               step=0.05, tooltip="Never stop before this fraction of the steps."),
                io.Float.Input("eta", default=1.0, min=0.0, max=100.0, step=0.01,
                               tooltip="Ancestral only: noise amount."),
                io.Float.Input("s_noise", default=1.0, min=0.0, max=100.0, step=0.01,
                               tooltip="Ancestral only: noise scale."),
                io.Combo.Input("rule", options=list(EARLY_STOP_RULES), default=EARLY_STOP_RULES[0], optional=True,
                               tooltip="'denoised change' (the original rule): the estimate stops changing between "
                                       "steps, which injected noise prevents; 'residual': every batch item is within "
                                       "the tolerance of its own denoised estimate (robust to ancestral noise)."),
            ],
            outputs=[io.Sampler.Output(tooltip="Wire into SamplerCustom / SamplerCustomAdvanced.")],
        )

    @classmethod
    def validate_inputs(cls, rule: str | None = None) -> bool | str:
        return combo_verdict(cls, rule=rule)  # V3 combos are not checked by ComfyUI 0.3.75 (nodes/combo_check.py)

    @classmethod
    def execute(cls, ancestral, tolerance, patience, min_fraction, eta, s_noise,
                rule: str = EARLY_STOP_RULES[0]) -> io.NodeOutput:
        require_combos(cls, {"rule": rule}, GuidanceInputError)
        return io.NodeOutput(early_stop_sampler(ancestral, tolerance, patience, min_fraction, eta, s_noise,
                                                rule=rule))


def plot_schedule(summary: dict, width: int = 640, height: int = 320) -> torch.Tensor:
    """The schedule as an IMAGE [1, H, W, 3] (drawn with OpenCV, agents.guidance.schedule_plot)."""
    rgb = plot_schedule_rgb(summary, width, height)
    return torch.from_numpy(rgb.astype(np.float32) / 255.0).unsqueeze(0)


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
    def validate_inputs(cls, sampler_name: str | None = None, scheduler: str | None = None,
                        schedule: str | None = None, base_source: str | None = None,
                        early_stop_rule: str | None = None, preset: str | None = None,
                        early_stop_estimate: str | None = None, gap_measure: str | None = None) -> bool | str:
        """ComfyUI 0.3.75 checks combo values only for V1-style option lists; a V3 Combo is declared as
        ("COMBO", {"options": ...}), so /prompt accepted any sampler_name. Refused here, by name
        (nodes/combo_check.py; the guidance options' combos too)."""
        return combo_verdict(cls, sampler_name=sampler_name, scheduler=scheduler, schedule=schedule,
                             base_source=base_source, early_stop_rule=early_stop_rule, preset=preset,
                             early_stop_estimate=early_stop_estimate, gap_measure=gap_measure)

    @classmethod
    def execute(cls, model, seed, steps, cfg, sampler_name, scheduler, positive, negative, latent_image, denoise,
                **options) -> io.NodeOutput:
        import nodes  # ComfyUI's own nodes.py: common_ksampler is exactly what KSampler runs

        require_combos(cls, {"sampler_name": sampler_name, "scheduler": scheduler, **options}, GuidanceInputError)
        if not isinstance(steps, int) or steps < 1:
            raise GuidanceInputError(f"steps: must be an integer >= 1, got {steps!r}")
        if not (0.0 <= denoise <= 1.0):
            raise GuidanceInputError(f"denoise: must be in [0, 1], got {denoise}")
        if not isinstance(latent_image, dict) or "samples" not in latent_image:
            raise GuidanceInputError("latent_image: expected a LATENT dict with 'samples'")
        check_latent(latent_image["samples"])
        settings, base = node_settings(options, positive)
        runs: list[dict] = []
        patched = patch_model(model, settings, node_id=None, sink=runs.append)
        (latent,) = nodes.common_ksampler(patched, seed, steps, cfg, sampler_name, scheduler, positive, negative,
                                          latent_image, denoise=denoise)
        summary: dict[str, Any] = runs[-1] if runs else {"calls": [], "steps": 0, "steps_used": 0, "model_calls": 0}
        summary["base_cfg"] = base if base is not None else cfg
        text = json.dumps(summary)
        panel = {"kind": "schedule", "title": "Adaptive CFG schedule", "data": summary}
        return io.NodeOutput(latent, summary, text, plot_schedule(summary), int(summary["steps_used"]),
                             ui={"m4_panel": [panel]})


NODES = [M4EarlyStopSampler, M4AdaptiveKSampler]


