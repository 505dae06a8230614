"""A generated UI-format workflow as the API prompt the frontend would queue: links, and widget values in the
object_info snapshot's input order; muted and bypassed nodes left out, as the frontend leaves them out."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

LEFT_OUT_MODES = (2, 4)  # "never" (muted) and bypassed
# Widgets that keep extra, unqueued entries in widgets_values after their own value.
_EXTRA_VALUES = {"control_after_generate": 1, "image_upload": 1, "audio_upload": 2}


def ui_to_api(wf: dict[str, Any], defs: dict[str, Any], widget_types: Collection[str]) -> dict[str, Any]:
    links = {lk[0]: lk for lk in wf["links"]}
    api: dict[str, Any] = {}
    for node in wf["nodes"]:
        if node.get("mode", 0) in LEFT_OUT_MODES:
            continue
        inputs: dict[str, Any] = {}
        values = list(node.get("widgets_values", []))
        for spec in defs[node["type"]]["inputs"]:
            if spec["type"] in widget_types:
                inputs[spec["name"]] = values.pop(0)
                del values[:sum(n for key, n in _EXTRA_VALUES.items() if spec.get(key))]
        for row in node["inputs"]:
            if row.get("link") is not None:
                _, src, slot, *_ = links[row["link"]]
                inputs[row["name"]] = [str(src), slot]
        api[str(node["id"])] = {"class_type": node["type"], "inputs": inputs}
    return api
