"""Every Combo input of every pack node is refused by name when its value is not one of its options.

ComfyUI 0.3.75 checks combo values at /prompt only for V1-style option lists; a V3 io.Combo.Input is
("COMBO", {"options": ...}), so each node checks its own (nodes/combo_check.py): in its V3 validate_inputs,
which ComfyUI calls with only the inputs it names (a linked one as None), and at the start of execute.
This walks NODES of every family, so a node added with a combo and without the check fails here.
"""

from __future__ import annotations

import importlib
import inspect
import re
from typing import Any

import pytest

from host.inprocess import run_node

BAD = "m4 not an option"


def _combo_nodes(pack) -> list[tuple[type, dict[str, list[Any]]]]:
    """(node, {combo input: options}) for every registered node with a Combo input, read from its schema."""
    io = importlib.import_module("comfy_api.v0_0_2").io
    found = []
    for node in importlib.import_module(f"{pack.__name__}.nodes").all_nodes():
        combos = {i.id: list(i.options) for i in node.define_schema().inputs or [] if isinstance(i, io.Combo.Input)}
        if combos:
            found.append((node, combos))
    return found


def _good(combos: dict[str, list[Any]]) -> dict[str, Any]:
    return {name: options[0] for name, options in combos.items()}


def _refusal(name: str) -> str:
    return f"^{re.escape(name)}: {re.escape(repr(BAD))} is not one of "


def test_the_walk_finds_every_family_with_a_combo(pack) -> None:
    ids = {node.define_schema().node_id for node, _ in _combo_nodes(pack)}
    assert {"M4AdaptiveCFG", "M4AdaptiveGuider", "M4AdaptiveKSampler", "M4EarlyStopSampler", "M4KeyframeImputer",
            "M4CPPNFrames", "M4CLIPGuidedCPPN", "M4RateRun"} <= ids


def test_validate_inputs_names_each_combo_input_and_no_kwargs(pack) -> None:
    """ComfyUI passes validate_inputs only the inputs it names; **kwargs would drop every input's min/max check."""
    first_real_override = importlib.import_module("comfy_api.internal").first_real_override
    for node, combos in _combo_nodes(pack):
        node_id = node.define_schema().node_id
        assert first_real_override(node, "validate_inputs") is not None, f"{node_id}: no validate_inputs"
        spec = inspect.getfullargspec(node.validate_inputs)
        assert spec.varkw is None, f"{node_id}: validate_inputs takes **kwargs (ComfyUI then skips min/max)"
        assert set(combos) <= set(spec.args), f"{node_id}: validate_inputs misses {set(combos) - set(spec.args)}"
        inputs = {i.id: i for i in node.define_schema().inputs or []}
        bounded = [a for a in spec.args if a in inputs and a not in combos
                   and (getattr(inputs[a], "min", None) is not None or getattr(inputs[a], "max", None) is not None)]
        assert bounded == [], f"{node_id}: validate_inputs takes {bounded}, whose min/max ComfyUI would then skip"


def test_a_bad_value_on_any_combo_is_refused_at_validation_by_name(pack) -> None:
    for node, combos in _combo_nodes(pack):
        node_id = node.define_schema().node_id
        assert node.validate_inputs(**_good(combos)) is True, node_id
        assert node.validate_inputs(**dict.fromkeys(combos)) is True, f"{node_id}: linked inputs (None) must pass"
        assert node.validate_inputs() is True, node_id
        for name in combos:
            verdict = node.validate_inputs(**(_good(combos) | {name: BAD}))
            assert isinstance(verdict, str) and re.match(_refusal(name), verdict), (node_id, name, verdict)
            assert "\n" not in verdict


def _execute_args(node: type, combos: dict[str, list[Any]], name: str) -> dict[str, Any]:
    """Every execute parameter without a default as None (the check must come before they are used), the
    combos good but `name`."""
    params = inspect.signature(node.execute).parameters.values()
    args: dict[str, Any] = {p.name: None for p in params
                            if p.default is inspect.Parameter.empty and p.kind is not p.VAR_KEYWORD}
    return args | _good(combos) | {name: BAD}


def test_a_bad_value_on_any_combo_is_refused_first_in_execute(pack) -> None:
    for node, combos in _combo_nodes(pack):
        for name in combos:
            with pytest.raises(ValueError, match=_refusal(name)):
                run_node(node, **_execute_args(node, combos, name))


def test_the_message_lists_short_option_lists_and_counts_long_ones(pack) -> None:
    run_logging = importlib.import_module(f"{pack.__name__}.nodes.run_logging")
    check = importlib.import_module(f"{pack.__name__}.nodes.combo_check")
    assert run_logging.M4RateRun.validate_inputs(rating="meh") == "rating: 'meh' is not one of good, bad"
    with pytest.raises(check.ComboInputError, match=r"^rating: None is not one of good, bad$"):
        check.require_combos(run_logging.M4RateRun, {"rating": None})  # at execute every value is known
    torch = importlib.import_module("torch")
    assert run_logging.M4RateRun.validate_inputs(rating=torch.zeros(2)).startswith("rating: tensor(")
    sampler = importlib.import_module(f"{pack.__name__}.nodes.adaptive_sampler").M4AdaptiveKSampler
    samplers = importlib.import_module("comfy.samplers").KSampler.SAMPLERS
    assert len(samplers) > check.LISTED_OPTIONS_MAX
    verdict = sampler.validate_inputs(sampler_name="bogus")
    assert verdict == (f"sampler_name: 'bogus' is not one of the {len(samplers)} options "
                       f"({', '.join(samplers[:check.OPTIONS_SHOWN])}, ...)")
