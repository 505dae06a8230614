"""The one check of a node's combo values against its schema's options.

ComfyUI 0.3.75 checks a value at /prompt only against a V1-style option list; a V3 `io.Combo.Input` is
declared as ("COMBO", {"options": [...]}), so an API prompt's `"mode": "bogus"` reached `execute`. Every pack
node with a Combo input returns `combo_verdict(cls, ...)` from its V3 `validate_inputs` (the prompt is then
refused at submit, naming node and input) and calls `require_combos(cls, ...)` first thing in `execute`.

How ComfyUI 0.3.75 calls `validate_inputs` (execution.validate_inputs): with only the inputs it names as
parameters and the prompt holds; a linked input arrives as None (its value is unknown before the graph
runs), so None passes here. Every input it names, and every input at all when it takes **kwargs, loses the
server's own min/max check: so each node's `validate_inputs` names exactly its combo inputs, each
defaulting to None.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from comfy_api.v0_0_2 import io

# Longer option lists (ComfyUI's samplers) are counted in the message, not listed: ComfyUI's own
# value_not_in_list message uses the same cut.
LISTED_OPTIONS_MAX = 20
OPTIONS_SHOWN = 5  # how many of a long list the message still shows


class ComboInputError(ValueError):
    """A combo input's value is not one of its options (the message names the input)."""


def combo_options(node: type[io.ComfyNode]) -> dict[str, list[Any]]:
    """Each Combo input of the node's schema -> its options, in schema order."""
    inputs = node.define_schema().inputs or []
    return {i.id: list(i.options or []) for i in inputs
            if isinstance(i, io.Combo.Input) and not getattr(i, "multiselect", False)}


def _listed(options: Sequence[Any]) -> str:
    if len(options) <= LISTED_OPTIONS_MAX:
        return ", ".join(str(o) for o in options)
    return f"the {len(options)} options ({', '.join(str(o) for o in options[:OPTIONS_SHOWN])}, ...)"


def _is_option(value: Any, options: Sequence[Any]) -> bool:
    # only plain values are compared: a tensor or dict must not reach `==` against every option
    return isinstance(value, (str, int, float)) and not isinstance(value, bool) and value in options


def combo_problem(node: type[io.ComfyNode], values: Mapping[str, Any], *, unknown_passes: bool) -> str | None:
    """'<input>: <value!r> is not one of <options>' for the first combo input (schema order) whose value in
    `values` is not one of its options, or None. Names in `values` that are not combo inputs are ignored;
    with `unknown_passes`, None (a linked input at validation) passes."""
    for name, options in combo_options(node).items():
        if name not in values or (values[name] is None and unknown_passes):
            continue
        if not _is_option(values[name], options):
            return f"{name}: {values[name]!r} is not one of {_listed(options)}"
    return None


def combo_verdict(node: type[io.ComfyNode], **values: Any) -> bool | str:
    """What a V3 `validate_inputs` returns: True, or the one-line error naming the first bad combo input."""
    return combo_problem(node, values, unknown_passes=True) or True


def require_combos(node: type[io.ComfyNode], values: Mapping[str, Any],
                   error: type[ValueError] = ComboInputError) -> None:
    """At the start of `execute`: every combo value given must be one of its options (None too), else
    `error` (the node family's input error) with the same one-line message."""
    problem = combo_problem(node, values, unknown_passes=False)
    if problem:
        raise error(problem)
