"""A transparent PNG whose hidden pixels are black plans the same in the graph as with `./m4 plan`.

ComfyUI's LoadImage puts the file's alpha into its MASK output (1 - alpha) and hands the hidden colour
(black here) on in IMAGE; the M4 nodes' optional MASK inputs composite it on white as `./m4 plan` does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from agents.policy import default_policy
from agents.runtime.apply_plan import planning_graph, planning_reports
from cli.plan_cmd import plan_pair

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def _transparent_black(source: Path, dest: Path) -> Path:
    """The drawing's ink opaque, its paper fully transparent with black RGB underneath (BGRA on disk)."""
    grey = cv2.imread(str(source), cv2.IMREAD_GRAYSCALE)
    assert grey is not None, source
    ink = 255 - grey  # dark strokes -> opaque
    bgra = np.zeros((*grey.shape, 4), np.uint8)
    bgra[:, :, :3] = np.where(ink[:, :, None] > 0, grey[:, :, None], 0)
    bgra[:, :, 3] = ink
    assert cv2.imwrite(str(dest), bgra)
    return dest


def _unmasked_workflow(sketch: str, reference: str, tags: str) -> dict[str, Any]:
    """The planning graph (which wires LoadImage's MASK into both agents) with the masks taken out."""
    wf = planning_graph(sketch=sketch, reference=reference, tags=tags)
    ids = default_policy().template_contract.planning
    wf[ids["analyst"]]["inputs"].pop("mask")
    wf[ids["compare"]]["inputs"].pop("sketch_mask")
    wf[ids["compare"]]["inputs"].pop("reference_mask")
    return wf


def _comparable(result: dict[str, Any]) -> dict[str, Any]:
    analysis = {k: v for k, v in result["analysis"].items() if k != "image_name"}
    plan = {k: v for k, v in result["plan"].items() if k != "prompts"}
    return {"analysis": analysis, "reference": result["reference"], "plan": plan}


@pytest.mark.parametrize("stem", ["house_line", "human_line"])
def test_transparent_sketch_plans_identically_in_the_graph_and_on_the_command_line(comfy_server, tmp_path, stem):
    sketch = _transparent_black(FIXTURES / "sketches" / f"{stem}.png", tmp_path / f"m4_transparent_{stem}.png")
    reference = _transparent_black(FIXTURES / "references" / "madoka_lineart.png",
                                   tmp_path / "m4_transparent_reference.png")
    tags = "house"  # the same non-empty tags on both sides (the CLI reads "" as no tags)
    cli = plan_pair(sketch, reference, tags)

    names = comfy_server.upload_image(sketch), comfy_server.upload_image(reference)
    graph = planning_graph(sketch=names[0], reference=names[1], tags=tags)
    served = planning_reports(comfy_server.run(graph, timeout=240))
    assert _comparable(served) == _comparable(cli)

    # Without the masks the graph sees the black hidden pixels: the plan differs (the test can fail).
    unmasked = planning_reports(comfy_server.run(_unmasked_workflow(*names, tags + ", unmasked"), timeout=240))
    assert unmasked["analysis"]["measurements"] != served["analysis"]["measurements"]
