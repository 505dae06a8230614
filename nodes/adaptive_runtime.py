"""The adaptive-CFG runtime inside ComfyUI's sampler, shared by the guidance nodes: the MODEL patch
(wrappers), the GUIDER class, the per-run state and its live events. The math lives in agents.guidance.

Patch route: PREDICT_NOISE + OUTER_SAMPLE wrappers added with a key on a model clone (chaining-safe,
nothing global). Per call the wrapper sets the guider's cfg to the adaptive scale and restores it
in `finally`; a scale of exactly 1.0 takes ComfyUI's own cfg==1 path, which skips the uncond pass.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import sys
import weakref
from collections.abc import Callable
from typing import Any

import comfy.patcher_extension as pe
import comfy.samplers
import torch

from ..agents.guidance import (
    EVENT,
    GuidanceController,
    GuidanceInputError,
    GuidanceSettings,
    HeuristicPromptAnalyzer,
    ScheduleEntry,
)
from ..agents.guidance.noise_level import NoiseLevelTable, next_scheduled_sigma

WRAPPER_KEY = "m4_adaptive_cfg"
STATE_KEY = "m4_adaptive_cfg_run"


_NOISE_TABLES: weakref.WeakKeyDictionary[Any, NoiseLevelTable] = weakref.WeakKeyDictionary()


def sigma_to_t_norm(model_sampling: Any, sigma: float) -> float:
    """1 - ComfyUI's "percent" for this sigma, so 1.0 = the model's highest noise level (a table per
    model sampling object, built on first use from its own percent_to_sigma)."""
    table = _NOISE_TABLES.get(model_sampling)
    if table is None:
        table = _NOISE_TABLES[model_sampling] = NoiseLevelTable(model_sampling.percent_to_sigma)
    return table.t_norm(float(sigma))


def run_progress(sample_sigmas: list[float] | None, sigma: float) -> float:
    """0 at the run's first sigma, 1 at its last non-zero one (log scale), by noise level."""
    if sample_sigmas is None or len(sample_sigmas) < 2:
        return 0.0
    s = [v for v in sample_sigmas if v > 0]
    if len(s) < 2 or sigma <= 0:
        return 1.0
    top, bottom = math.log(s[0]), math.log(s[-1])
    if top <= bottom:
        return 1.0
    return min(max((top - math.log(sigma)) / (top - bottom), 0.0), 1.0)


def send_event(payload: dict) -> None:
    """Per-call event to the UI; in-process (no server running) there is nobody to tell."""
    server = sys.modules.get("server")
    instance = getattr(getattr(server, "PromptServer", None), "instance", None)
    if instance is None:
        return
    try:
        instance.send_sync(EVENT, payload, getattr(instance, "client_id", None))
    except Exception:  # a UI message must never break sampling
        logging.debug("%s event not sent", EVENT, exc_info=True)


class RunState:
    """One sampling run: its controller, the sigmas it samples, and where the summary goes."""

    def __init__(self, settings: GuidanceSettings, node_id: str | None, sink: Callable[[dict], None] | None):
        self.node_id = node_id
        self.sink = sink
        # The run's sigmas as Python floats, read once: they may live on the GPU, and every call needs them.
        self.sigma_values: list[float] | None = None
        self.controller = GuidanceController(settings, on_entry=self._emit)

    def _emit(self, e: ScheduleEntry) -> None:
        if self.node_id is not None:
            send_event({"node": self.node_id, "sigma": e.sigma, "cfg": e.cfg, "uncond": e.uncond,
                        "index": e.index, "skipped": e.skipped})

    def summary(self) -> dict:
        out = self.controller.summary()
        sig = self.sigma_values or []
        steps = max(len(sig) - 1, 0)
        out["sample_sigmas"] = [round(v, 6) for v in sig]
        out["steps"] = steps
        stop = self.controller.stopped_at_sigma
        out["steps_used"] = steps if stop is None else sum(1 for v in sig[:-1] if v >= stop * (1 - 1e-6))
        out["node"] = self.node_id
        out["early_stop_note"] = early_stop_note(self.controller.settings, stop, out["steps_used"], steps)
        return out

    def finish(self) -> None:
        summary = self.summary()
        if self.sink is not None:
            self.sink(summary)
        if self.node_id is not None:
            send_event({"node": self.node_id, "final": True, "steps_used": summary["steps_used"],
                        "steps": summary["steps"], "model_calls": summary["model_calls"],
                        "uncond_calls": summary["uncond_calls"]})


def early_stop_note(settings: GuidanceSettings, stopped_at: float | None, used: int, steps: int) -> str:
    """What early stop did in this run, in words (the schedule output says so when it saved nothing)."""
    early = settings.early_exit
    if early is None:
        return "early stop off"
    if stopped_at is not None:
        if used < steps:
            return f"early stop ({early.rule}) saved {steps - used} of {steps} steps"
        # the test passed only at the last call: nothing was left to skip
        return f"early stop ({early.rule}) saved nothing: the run converged only at its last step"
    return (f"early stop ({early.rule}) saved nothing: the run did not converge within tolerance "
            f"{early.tolerance:g} before its last step")


CallNext = Callable[[float, torch.Tensor, torch.Tensor, dict, Any], torch.Tensor]


def adaptive_step(call_next: CallNext, state: RunState, inner_model: Any, base_cfg: float,
                  x: torch.Tensor, timestep: torch.Tensor, model_options: dict, seed: Any) -> torch.Tensor:
    """One model call at the adaptive scale; feeds the result back to the controller."""
    transformer_options = model_options.get("transformer_options", {})
    if state.sigma_values is None and transformer_options.get("sample_sigmas") is not None:
        state.sigma_values = [float(v) for v in transformer_options["sample_sigmas"].tolist()]
    sigma = float(timestep.flatten()[0])
    t_norm = sigma_to_t_norm(inner_model.model_sampling, sigma)
    progress = run_progress(state.sigma_values, sigma)
    ctl = state.controller
    # Another node (SAG, *_cfg_pp) may force the uncond pass: the record (and the live event) says it ran.
    plan = ctl.begin(base_cfg, sigma, t_norm,
                     forced_uncond=bool(model_options.get("disable_cfg1_optimization", False)),
                     next_sigma=next_scheduled_sigma(state.sigma_values, sigma))
    if plan.frozen is not None:
        # early exit: the converged estimate stands for every later call, no model evaluation
        return plan.frozen.to(device=x.device, dtype=x.dtype)
    probe: dict[str, torch.Tensor | None] = {}

    def capture(args: dict) -> torch.Tensor:
        probe["cond"] = args.get("cond_denoised")
        probe["uncond"] = args.get("uncond_denoised") if args.get("uncond") is not None else None
        return args["denoised"]

    options = dict(model_options)
    options["sampler_post_cfg_function"] = [*model_options.get("sampler_post_cfg_function", []), capture]
    out = call_next(plan.cfg, x, timestep, options, seed)
    ctl.end(x, out, probe.get("cond"), probe.get("uncond"), sigma, t_norm, progress)
    return out


def _state_for(guider: Any, model_options: dict, settings: GuidanceSettings, node_id: str | None,
               sink: Callable[[dict], None] | None) -> RunState:
    state = model_options.get("transformer_options", {}).get(STATE_KEY)
    if state is None:
        # No OUTER_SAMPLE wrapper ran (an unusual host path): keep a run on the guider object itself.
        state = getattr(guider, "_m4_fallback_state", None)
        if state is None:
            state = RunState(settings, node_id, sink)
            guider._m4_fallback_state = state
    return state


def base_from_conditioning(guider: Any) -> float:
    """The prompt analyser's base scale read from the guider's positive conditioning tensor."""
    positive = getattr(guider, "original_conds", {}).get("positive") or []
    emb = positive[0].get("cross_attn") if positive else None
    if emb is None:
        raise GuidanceInputError("base_source: 'prompt analysis' needs prompt text or a positive conditioning "
                                 "with a cross-attention tensor")
    return HeuristicPromptAnalyzer().analyze(None, emb).base_guidance


def make_patch_wrappers(settings: GuidanceSettings, node_id: str | None,
                        sink: Callable[[dict], None] | None = None,
                        conditioning_base: bool = False) -> tuple[Callable, Callable]:
    """(outer_sample wrapper, predict_noise wrapper) for ModelPatcher.add_wrapper_with_key."""

    def outer_sample(executor, *args, **kwargs):
        guider = executor.class_obj
        run_settings = settings
        if conditioning_base:
            run_settings = dataclasses.replace(settings, base_override=base_from_conditioning(guider))
        state = RunState(run_settings, node_id, sink)
        guider.model_options.setdefault("transformer_options", {})[STATE_KEY] = state
        try:
            return executor(*args, **kwargs)
        finally:
            guider.model_options.get("transformer_options", {}).pop(STATE_KEY, None)
            state.finish()

    def predict_noise(executor, x, timestep, model_options={}, seed=None):  # noqa: B006  (host's signature)
        guider = executor.class_obj
        if getattr(guider, "m4_adaptive", False):
            return executor(x, timestep, model_options, seed)  # the adaptive guider already adapts
        state = _state_for(guider, model_options, settings, node_id, sink)
        base = float(guider.cfg)

        def call_next(cfg, x_, t_, mo, seed_):
            guider.cfg = cfg
            try:
                return executor(x_, t_, mo, seed_)
            finally:
                guider.cfg = base

        return adaptive_step(call_next, state, guider.inner_model, base, x, timestep, model_options, seed)

    return outer_sample, predict_noise


def patch_model(model: Any, settings: GuidanceSettings, node_id: str | None = None,
                sink: Callable[[dict], None] | None = None, conditioning_base: bool = False) -> Any:
    """A clone of `model` whose samplers use adaptive CFG; the original stays untouched."""
    m = model.clone()
    outer, predict = make_patch_wrappers(settings, node_id, sink, conditioning_base)
    m.remove_wrappers_with_key(pe.WrappersMP.OUTER_SAMPLE, WRAPPER_KEY)  # re-patching replaces, never stacks
    m.remove_wrappers_with_key(pe.WrappersMP.PREDICT_NOISE, WRAPPER_KEY)
    m.add_wrapper_with_key(pe.WrappersMP.OUTER_SAMPLE, WRAPPER_KEY, outer)
    m.add_wrapper_with_key(pe.WrappersMP.PREDICT_NOISE, WRAPPER_KEY, predict)
    return m


class AdaptiveCFGGuider(comfy.samplers.CFGGuider):
    """CFGGuider whose predict_noise uses the adaptive scale (base = the cfg it was given)."""

    m4_adaptive = True

    def __init__(self, model_patcher: Any, settings: GuidanceSettings, node_id: str | None = None,
                 sink: Callable[[dict], None] | None = None):
        super().__init__(model_patcher)
        self.settings = settings
        self.node_id = node_id
        self.sink = sink
        self._state: RunState | None = None

    def outer_sample(self, *args, **kwargs):
        self._state = RunState(self.settings, self.node_id, self.sink)
        try:
            return super().outer_sample(*args, **kwargs)
        finally:
            state, self._state = self._state, None
            state.finish()

    def predict_noise(self, x, timestep, model_options={}, seed=None):  # noqa: B006  (host's signature)
        state = self._state or _state_for(self, model_options, self.settings, self.node_id, self.sink)

        def call_next(cfg, x_, t_, mo, seed_):
            return comfy.samplers.sampling_function(self.inner_model, x_, t_, self.conds.get("negative", None),
                                                    self.conds.get("positive", None), cfg, model_options=mo,
                                                    seed=seed_)

        return adaptive_step(call_next, state, self.inner_model, float(self.cfg), x, timestep, model_options, seed)


def check_latent(samples: Any, input_name: str = "latent_image") -> None:
    if not isinstance(samples, torch.Tensor) or samples.ndim not in (4, 5):
        shape = tuple(samples.shape) if isinstance(samples, torch.Tensor) else type(samples).__name__
        raise GuidanceInputError(f"{input_name}: expected a LATENT [B,C,H,W] or [B,C,T,H,W], got {shape}")
    if samples.numel() == 0:
        raise GuidanceInputError(f"{input_name}: the latent is empty")
    if not torch.isfinite(samples).all():
        raise GuidanceInputError(f"{input_name}: the latent contains NaN or infinite values")
