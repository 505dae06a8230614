"""A canvas run as the bundled M4 preset queues it (the locked template with the M4 agents planning inside the
graph), on the stand-in models at 64x64, with M4 Run Logger on the final image and optionally M4 Rate Run: the
server and browser tiers' calibration plumbing tests queue it (over HTTP, or loaded into the page)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from agents.policy import default_policy
from agents.runtime.apply_plan import set_load_images, wire_planning
from cli.template_run import swap_in_standins

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "workflows" / "api" / "Animation_Workflow_M4_Api.json"


def canvas_run_graph(checkpoint: str, controlnet: str, sketch: str, reference: str, seed: int,
                     rating: str | None = None) -> tuple[dict[str, Any], str]:
    """(API graph, the logger's node id). sketch/reference: uploaded file names. A new seed per run keeps
    ComfyUI's cache from serving an earlier run's outputs (the logger would not run again)."""
    contract = default_policy().template_contract
    template = json.loads(TEMPLATE.read_text(encoding="utf-8"))
    graph = swap_in_standins(wire_planning(template), checkpoint=checkpoint, controlnet=controlnet).workflow
    graph = set_load_images(graph, sketch=sketch, reference=reference)
    for node in graph.values():
        if node["class_type"] == "KSampler":
            node["inputs"]["seed"] = seed
    free = max(int(k) for k in graph) + 1  # numeric ids: the frontend's loadApiJson keeps them
    logger, rater = str(free), str(free + 1)
    p = contract.planning
    graph[logger] = {"class_type": "M4RunLogger", "inputs": {
        "image": [contract.feeds["final_image"], 0], "plan": [p["prompts"], 0], "analysis": [p["analyst"], 0],
        "reference_report": [p["compare"], 0], "sketch": [contract.images["sketch"], 0], "enabled": True}}
    if rating is not None:
        graph[rater] = {"class_type": "M4RateRun", "inputs": {"run_id": [logger, 0], "rating": rating,
                                                             "note": "rated on the canvas"}}
    return graph, logger
