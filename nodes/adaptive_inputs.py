"""The adaptive guidance options as node inputs, declared once for the three guidance nodes
(M4AdaptiveCFG, M4AdaptiveGuider, M4AdaptiveKSampler): names, kinds, defaults and ranges come from
agents/guidance/guidance.toml (agents.guidance.data), the tooltips from here."""

from __future__ import annotations

from typing import Any

from comfy_api.v0_0_2 import io

from ..agents.guidance import (
    GuidanceInputError,
    GuidanceSettings,
    HeuristicPromptAnalyzer,
    OptionSpec,
    guidance_data,
    option_specs,
    parse_options,
)
from ..agents.guidance.data import BASE_SOURCES
from .types import CATEGORY

SUBCATEGORY = f"{CATEGORY}/guidance"

# The node defaults (read-only view of guidance.toml's option defaults).
DEFAULTS: dict[str, Any] = guidance_data().defaults()

_BASES = guidance_data().tunables
TOOLTIPS: dict[str, str] = {
    "schedule": "How guidance follows the noise level. linear_up (default): off at the highest noise, rising to 2x "
                "the base at the end (best on the pack's exact-score benchmark). cosine_up likewise; s_curve strong "
                "early/weak late (the seed's curve); constant; linear/cosine down; interval (guidance only for sigma "
                "in (interval_sigma_lo, interval_sigma_hi]).",
    "cfg_min": "Lower bound for the effective CFG (applied before skip_below).",
    "cfg_max": "Upper bound for the effective CFG.",
    "skip_below": "Effective CFG under this becomes exactly 1.0: ComfyUI then skips the unconditional pass (about "
                  "half the model work of that step). With linear_up this is what turns guidance off at the start.",
    "quality_adjust": "Nudge the scale by -30%..+20% from cond/uncond agreement and spikes in the denoised estimate "
                      "(a heuristic; off by default: on the benchmark it cost class precision now and then; see the "
                      "docs).",
    "agreement_cutoff": "0 = off. Otherwise turn guidance off for the rest of the run once the cosine between cond "
                        "and uncond predictions reaches this (Adaptive Guidance).",
    "interval_sigma_lo": "interval schedule only: guidance is on for sigma in (lo, hi].",
    "interval_sigma_hi": "interval schedule only: upper sigma of the guided interval.",
    "early_stop": "Stop evaluating the model once the run has converged (on by default; never before half of the "
                  "run); the converged estimate stands for the remaining steps. Turn off for bit-exact full-length "
                  "runs.",
    "early_stop_tolerance": "Relative change counted as converged (see early_stop_rule).",
    "base_source": "Base scale: the sampler's cfg, or the prompt analyser's estimate "
                   f"({_BASES['prompt_base_simple']:g} simple .. {_BASES['prompt_base_complex']:g} complex) from "
                   "`prompt` (or from the conditioning when prompt is empty).",
    "prompt": "Prompt text for base_source = prompt analysis (optional).",
    "cap_at_base": "Never above the base scale: the schedule may only lower guidance (and skip the unconditional "
                   "pass). On in the M4 adaptive preset, so the Director's CFG and the policy's hard rules stay upper "
                   "limits.",
    "early_stop_rule": "What counts as converged. 'denoised change' (the original rule): the denoised estimate "
                       "changes less than the tolerance between calls; the noise SDE/ancestral samplers inject keeps "
                       "it from firing there. 'residual': every batch item is within the tolerance of its own "
                       "denoised estimate (robust to injected noise; one item still moving keeps the batch going).",
    "preset": "none (default): the options as set. gap_residual: constant guidance at the base inside the window "
              "the guidance gap sets per run (see gap_cutoff), and the residual early stop (values in guidance.toml, "
              "chosen on the benchmark's tuning configurations), returning the spread-matched estimate after a "
              "stop; it overrides schedule, skip_below, early_stop, early_stop_rule, early_stop_tolerance, "
              "early_stop_estimate and gap_cutoff.",
    "gap_cutoff": "0 = off. Otherwise guidance runs where the guidance gap ||D_cond - D_uncond|| / ||x - D_cond|| "
                  "(the batch mean) says the class is being decided: unguided (no unconditional pass) above the "
                  "noise level where the first call's gap, growing as 1/sigma, would reach this value (times "
                  f"{_BASES['gap_wait_margin']:g}); guided from there; and once the gap has reached the value "
                  f"and stayed below it for {_BASES['gap_close_calls']:g} calls in a row (or peaked under it and "
                  f"fallen under {_BASES['gap_peak_fraction']:g} of its peak), the rest of the run skips the "
                  "unconditional pass. Decided per run, not at a fixed noise level.",
    "early_stop_estimate": "What the run returns after an early stop. denoised (default): the denoised estimate "
                           "at the stop, whose spread is slightly too small. half step: halfway from it to the "
                           "current latent (an Euler step to half the noise). spread matched: per item, as far "
                           "towards the latent as restores the spread the remaining steps would have added "
                           "(estimated from the residual; about half at low noise, less at higher noise). "
                           "Measured on an exact-score model only: on images the part kept is the noise left at "
                           "the stop, which may show as fine grain (not yet checked on a real checkpoint).",
    "gap_measure": "The guidance gap's reference (gap_cutoff > 0). residual (default): ||x - D_cond||, the step "
                   "itself. estimate: ||D_cond||, the result's estimate; it also falls at low noise where classes "
                   "overlap, so guidance is dropped there too.",
}


def _input(spec: OptionSpec) -> Any:
    tip = TOOLTIPS[spec.name]
    opt = {"optional": True} if spec.optional else {}
    if spec.kind == "choice":
        return io.Combo.Input(spec.name, options=list(spec.choices), default=spec.default, tooltip=tip, **opt)
    if spec.kind == "bool":
        return io.Boolean.Input(spec.name, default=spec.default, tooltip=tip, **opt)
    if spec.kind == "text":
        return io.String.Input(spec.name, default=spec.default, multiline=True, tooltip=tip, **opt)
    return io.Float.Input(spec.name, default=spec.default, min=spec.lo, max=spec.hi, step=spec.step, tooltip=tip,
                          **opt)


def guidance_inputs() -> list:
    """The adaptive options every route takes (same names, same meaning, same order)."""
    return [_input(s) for s in option_specs()]


def node_id_of(cls: type[io.ComfyNode]) -> str | None:
    """The executing node's id (None when called outside the executor, e.g. in-process tests)."""
    return getattr(cls.hidden, "unique_id", None)


def settings_from_inputs(options: dict[str, Any], base_override: float | None = None) -> GuidanceSettings:
    """Checked node options -> GuidanceSettings (unknown or out-of-range options raise, naming the option)."""
    return GuidanceSettings.from_options(parse_options(options), base_override=base_override)


def prompt_base(base_source: str, prompt: str | None, conditioning: Any = None) -> float | None:
    """None = use the sampler's cfg; otherwise the analyser's base scale."""
    if base_source not in BASE_SOURCES:
        raise GuidanceInputError(f"base_source: unknown value {base_source!r}; choose one of {BASE_SOURCES}")
    if base_source == "sampler cfg":
        return None
    emb = None
    if conditioning:
        emb = conditioning[0][0] if isinstance(conditioning[0], (list, tuple)) else None
    if not (prompt and prompt.strip()) and emb is None:
        raise GuidanceInputError("prompt: base_source is 'prompt analysis' but neither prompt text nor "
                                 "conditioning is available (type the prompt into the node)")
    return HeuristicPromptAnalyzer().analyze(prompt, emb).base_guidance


def node_settings(options: dict[str, Any], conditioning: Any = None) -> tuple[GuidanceSettings, float | None]:
    """(settings, prompt base or None) from one node's guidance options, as all three nodes build them."""
    opts = parse_options(options)
    base = prompt_base(opts["base_source"], opts["prompt"], conditioning)
    return GuidanceSettings.from_options(opts, base_override=base), base
