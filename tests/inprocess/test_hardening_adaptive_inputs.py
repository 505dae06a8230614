"""Issue 11 item 10: M4 Adaptive KSampler accepted sampler_name "bogus" (ComfyUI 0.3.75 validates combo
values only for V1-style option lists, and a V3 Combo is declared as ("COMBO", {"options": ...})): the
node's validate_inputs and execute refuse an unknown sampler or scheduler by name."""

from __future__ import annotations

import importlib

import pytest


@pytest.fixture(scope="module")
def sampler(pack):
    return importlib.import_module("m4_director.nodes.adaptive_sampler").M4AdaptiveKSampler


def test_validate_inputs_names_the_bad_combo(sampler) -> None:
    assert sampler.validate_inputs(sampler_name="euler", scheduler="karras") is True
    # ComfyUI's sampler list is long: counted, not listed (nodes/combo_check.py, the one check of every combo)
    assert str(sampler.validate_inputs(sampler_name="bogus", scheduler="karras")).startswith(
        "sampler_name: 'bogus' is not one of the "
        f"{len(importlib.import_module('comfy.samplers').KSampler.SAMPLERS)} options (euler, ")
    assert str(sampler.validate_inputs(sampler_name="euler", scheduler="weekly")).startswith("scheduler: 'weekly'")


def test_execute_refuses_a_bogus_sampler_before_sampling(sampler) -> None:
    errors = importlib.import_module("m4_director.agents.guidance")
    with pytest.raises(errors.GuidanceInputError, match="sampler_name: 'bogus'"):
        # the guidance options are keywords (declared once for the three guidance nodes)
        sampler.execute(None, 0, 4, 6.0, "bogus", "karras", None, None, {"samples": None}, 1.0,
                        schedule="s_curve", early_stop=False)
