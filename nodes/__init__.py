"""Thin V3 node adapters. Each family module exposes NODES (a list of io.ComfyNode classes).

Node ids are permanent once shipped: change display names, never node_id.
"""

from __future__ import annotations

import importlib

from comfy_api.v0_0_2 import ComfyExtension, io

# One module per node family; each defines NODES.
_FAMILIES = (
    "reference_compare",
    "line_quality",
    "visual_analyst",
    "adaptive_cfg",
    "adaptive_sampler",
    "director",
    "prompt_engineer",
    "run_logging",
    "inbetween",
    "patterns",
)


def all_nodes() -> list[type[io.ComfyNode]]:
    nodes: list[type[io.ComfyNode]] = []
    for family in _FAMILIES:
        module = importlib.import_module(f"{__name__}.{family}")
        nodes.extend(module.NODES)
    return nodes


class M4DirectorExtension(ComfyExtension):
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return all_nodes()
