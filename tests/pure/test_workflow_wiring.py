"""The bundled UI workflows' wiring around the agents: LoadImage's MASK reaches them, and the planning
branch depends on no node that needs model files (the real OpenPose downloads its weights on first use)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((REPO / "workflows").glob("*.json"))
PLANNING = {"M4VisualAnalyst", "M4ReferenceCompare", "M4AnimationDirector", "M4PromptEngineer", "M4PlanUnpack"}
# What the planning nodes may depend on: nothing that loads a model or downloads weights.
PLANNING_MAY_USE = PLANNING | {"LoadImage"}
MASKS = {"M4VisualAnalyst": {"image": "mask"},
         "M4ReferenceCompare": {"sketch": "sketch_mask", "reference": "reference_mask"}}


def _graph(path: Path) -> tuple[dict[int, dict], dict[int, dict[str, tuple[int, int]]]]:
    wf = json.loads(path.read_text(encoding="utf-8"))
    nodes = {n["id"]: n for n in wf["nodes"]}
    into: dict[int, dict[str, tuple[int, int]]] = {n: {} for n in nodes}
    for _lid, src, slot, dst, dst_slot, _typ in wf["links"]:
        into[dst][nodes[dst]["inputs"][dst_slot]["name"]] = (src, slot)
    return nodes, into


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.stem)
def test_every_loadimage_feeding_an_agent_also_gives_it_its_mask(path):
    nodes, into = _graph(path)
    for node_id, node in nodes.items():
        for image_input, mask_input in MASKS.get(node["type"], {}).items():
            src = into[node_id].get(image_input)
            if src is None or nodes[src[0]]["type"] != "LoadImage":
                continue
            assert into[node_id].get(mask_input) == (src[0], 1), \
                f"{path.stem}: {node['type']} {node_id}.{mask_input} is not LoadImage {src[0]}'s MASK"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.stem)
def test_planning_nodes_need_no_model_or_pose_branch(path):
    nodes, into = _graph(path)
    seen: set[int] = set()
    todo = [n for n, node in nodes.items() if node["type"] in PLANNING]
    while todo:
        n = todo.pop()
        if n in seen:
            continue
        seen.add(n)
        todo += [src for src, _slot in into[n].values()]
    upstream = sorted({nodes[n]["type"] for n in seen} - PLANNING_MAY_USE)
    assert upstream == [], f"{path.stem}: the planning branch depends on {upstream}"
