"""M4AdaptiveCFG (a MODEL patch for any sampler) and M4AdaptiveGuider (a GUIDER for
SamplerCustomAdvanced). Their options are declared once in nodes/adaptive_inputs.py; the runtime is
nodes/adaptive_runtime.py; the math is agents.guidance."""

from __future__ import annotations

from typing import Any

from comfy_api.v0_0_2 import io

from ..agents.guidance import GuidanceInputError, parse_options
from .adaptive_inputs import (
    DEFAULTS,
    SUBCATEGORY,
    guidance_inputs,
    node_id_of,
    node_settings,
    prompt_base,
    settings_from_inputs,
)
from .adaptive_runtime import (
    STATE_KEY,
    WRAPPER_KEY,
    AdaptiveCFGGuider,
    RunState,
    adaptive_step,
    check_latent,
    make_patch_wrappers,
    patch_model,
    send_event,
    sigma_to_t_norm,
)
from .combo_check import combo_verdict, require_combos

__all__ = ["DEFAULTS", "NODES", "STATE_KEY", "SUBCATEGORY", "WRAPPER_KEY", "AdaptiveCFGGuider", "M4AdaptiveCFG",
           "M4AdaptiveGuider", "RunState", "adaptive_step", "check_latent", "guidance_inputs", "make_patch_wrappers",
           "patch_model", "prompt_base", "send_event", "settings_from_inputs", "sigma_to_t_norm"]


def _validate_guidance_combos(cls: Any, schedule: str | None = None, base_source: str | None = None,
                              early_stop_rule: str | None = None, preset: str | None = None,
                              early_stop_estimate: str | None = None, gap_measure: str | None = None) -> bool | str:
    """Both nodes' `validate_inputs`: the guidance combos refused at /prompt by name (ComfyUI 0.3.75 does not
    check V3 combos). Named parameters, no **kwargs: ComfyUI passes exactly these (nodes/combo_check.py)."""
    return combo_verdict(cls, schedule=schedule, base_source=base_source, early_stop_rule=early_stop_rule,
                         preset=preset, early_stop_estimate=early_stop_estimate, gap_measure=gap_measure)


class M4AdaptiveCFG(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="M4AdaptiveCFG",
            display_name="M4 Adaptive CFG (model patch)",
            category=SUBCATEGORY,
            description="Patches a MODEL so the stock KSampler / SamplerCustomAdvanced change CFG per step by "
                        "noise level, skip the unconditional pass when the scale is 1.0, and optionally stop "
                        "early. The sampler's cfg is the base scale.",
            inputs=[io.Model.Input("model", tooltip="The model to patch (the original is left untouched).")]
            + guidance_inputs(),
            outputs=[io.Model.Output(tooltip="The patched model: wire it into any sampler.")],
            hidden=[io.Hidden.unique_id],
        )

    validate_inputs = classmethod(_validate_guidance_combos)

    @classmethod
    def execute(cls, model: Any, **options: Any) -> io.NodeOutput:
        require_combos(cls, options, GuidanceInputError)
        opts = parse_options(options)
        # prompt analysis without prompt text: the base is read from the sampler's conditioning at run time
        from_conditioning = opts["base_source"] == "prompt analysis" and not opts["prompt"].strip()
        if from_conditioning:
            settings = settings_from_inputs(dict(opts, base_source="sampler cfg"))
        else:
            settings, _ = node_settings(opts)
        return io.NodeOutput(patch_model(model, settings, node_id=node_id_of(cls),
                                         conditioning_base=from_conditioning))


class M4AdaptiveGuider(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="M4AdaptiveGuider",
            display_name="M4 Adaptive Guider",
            category=SUBCATEGORY,
            description="A CFG guider for SamplerCustomAdvanced whose scale follows the noise level, skips the "
                        "unconditional pass at 1.0 and optionally stops early.",
            inputs=[
                io.Model.Input("model", tooltip="The model to sample."),
                io.Conditioning.Input("positive", tooltip="Positive conditioning."),
                io.Conditioning.Input("negative", tooltip="Negative conditioning (the unconditional pass)."),
                io.Float.Input("cfg", default=7.0, min=0.0, max=100.0, step=0.1, round=0.01,
                               tooltip="Base CFG scale the schedule multiplies."),
            ] + guidance_inputs(),
            outputs=[io.Guider.Output(tooltip="Wire into SamplerCustomAdvanced.")],
            hidden=[io.Hidden.unique_id],
        )

    validate_inputs = classmethod(_validate_guidance_combos)

    @classmethod
    def execute(cls, model: Any, positive: Any, negative: Any, cfg: float, **options: Any) -> io.NodeOutput:
        require_combos(cls, options, GuidanceInputError)
        settings, _ = node_settings(options, positive)
        guider = AdaptiveCFGGuider(model, settings, node_id=node_id_of(cls))
        guider.set_conds(positive, negative)
        guider.set_cfg(cfg)
        return io.NodeOutput(guider)


NODES = [M4AdaptiveCFG, M4AdaptiveGuider]
