"""The planning chain in a real ComfyUI: LoadImage -> Analyst, Reference Compare -> Director -> Prompts."""

from __future__ import annotations

from pathlib import Path

from agents.planning.animation_director import plan_violations
from agents.planning.plan_types import Plan
from agents.policy import default_policy
from agents.runtime.apply_plan import planning_graph, planning_reports

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def _run(comfy_server, sketch: str, reference: str | None, tags: str = "") -> dict:
    sk = comfy_server.upload_image(FIXTURES / "sketches" / sketch)
    ref = comfy_server.upload_image(FIXTURES / "references" / reference) if reference else None
    history = comfy_server.run(planning_graph(sketch=sk, reference=ref, tags=tags), timeout=240)
    return planning_reports(history)


def test_chain_produces_a_valid_plan_through_prompt_and_history(comfy_server) -> None:
    result = _run(comfy_server, "human_line.png", "madoka.jpg", "1girl, solo")
    plan = Plan.from_dict(result["plan"])
    assert plan_violations(plan, default_policy()) == []
    assert result["reference"]["present"] is True
    assert result["reference"]["colored"] is True, "madoka.jpg is a colored reference"
    assert plan.diagnostics["reference_mode"] in {"off", "guarded", "style", "identity"}
    prompts = result["prompts"]
    assert prompts["ks1_positive"] != prompts["ks2_positive"]
    assert "1girl" in prompts["ks1_positive"].split(", ")[0]
    assert result["analysis"]["object_count"] >= 1


def test_colored_reference_moves_ip2_down_against_line_art_reference(comfy_server) -> None:
    colored = Plan.from_dict(_run(comfy_server, "user_3.png", "saber.png")["plan"])
    line_art = Plan.from_dict(_run(comfy_server, "user_3.png", "madoka_lineart.png")["plan"])
    assert colored.bounds["ip2_weight"][1] < line_art.bounds["ip2_weight"][1]
    assert colored.bounds["ip2_end_at"][1] < line_art.bounds["ip2_end_at"][1]


def test_no_reference_gives_r_zero(comfy_server) -> None:
    result = _run(comfy_server, "user_1.png", None)
    assert result["reference"]["present"] is False
    assert result["plan"]["signals"]["R"] == 0.0
