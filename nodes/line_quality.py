"""M4LineQualityAnalyzer: scores a generated line-art image and decides on the one safer retry."""

from __future__ import annotations

from typing import Any

from comfy_api.v0_0_2 import io

from ..agents.measure.line_quality import METRICS, LineQualityScores, judge, score_line_art
from ..agents.planning.animation_director import safer_retry
from ..agents.policy import default_policy
from .convert import image_batch_to_numpy
from .types import CATEGORY, Plan


def _worst(scores: list[LineQualityScores]) -> LineQualityScores:
    """One score set for a batch: each metric's worst image (a batch passes only if every image does)."""
    worst = {m: max(getattr(s, m) for s in scores) for m in METRICS}
    return LineQualityScores(**worst, empty=any(s.empty for s in scores))


def _report(scores: list[LineQualityScores], worst: LineQualityScores, failures: list[str],
            thresholds: dict[str, float]) -> str:
    lines = ["PASS" if not failures else "FAIL: " + ", ".join(failures)]
    for m in METRICS:
        mark = " > max" if m in failures else ""
        lines.append(f"{m}: {getattr(worst, m):.3f} (max {thresholds[f'max_{m}']:.2f}){mark}")
    if len(scores) > 1:
        lines.append(f"worst of {len(scores)} images")
    return "\n".join(lines)


class M4LineQualityAnalyzer(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="M4LineQualityAnalyzer",
            is_output_node=True,  # shows its report on the node even with nothing wired downstream
            display_name="M4 Line Quality Analyzer",
            category=f"{CATEGORY}/analysis",
            description=(
                "Scores generated line art for broken lines, dotted lines, colour fringing, jitter and "
                "stray marks (0..1, higher = worse) against the M4 policy's limits. On failure it returns "
                "the plan made safer once (lower cfg2, ip2, denoise2) for a re-run."
            ),
            inputs=[
                io.Image.Input("image", tooltip="The generated line art (a batch passes only if every image passes)."),
                Plan.Input(
                    "plan", optional=True,
                    tooltip="Optional M4 plan that produced the image; on failure the retry plan is derived from it.",
                ),
            ],
            outputs=[
                io.Boolean.Output("passed", display_name="passed",
                                  tooltip="True when every metric is within the policy's limit."),
                io.Float.Output("broken", display_name="broken",
                                tooltip="0..1 gaps in strokes (worst image of the batch)."),
                io.Float.Output("dotted", display_name="dotted",
                                tooltip="0..1 strokes drawn as chains of dots (worst image)."),
                io.Float.Output("fringe", display_name="fringe",
                                tooltip="0..1 colour along the edges of monochrome art (worst image)."),
                io.Float.Output("jitter", display_name="jitter",
                                tooltip="0..1 high-frequency contour wobble (worst image)."),
                io.Float.Output("stray", display_name="stray",
                                tooltip="0..1 isolated specks and stray marks (worst image)."),
                io.String.Output("report", display_name="report",
                                 tooltip="Pass/fail and every score against its limit, as text."),
                Plan.Output(
                    "retry_plan",
                    display_name="retry_plan",
                    tooltip="Failed with a plan: the safer retry plan. Passed, or the plan is already a retry: "
                    "the plan unchanged. No plan: None.",
                ),
            ],
        )

    @classmethod
    def execute(cls, image: Any, plan: Any = None) -> io.NodeOutput:
        arrays = image_batch_to_numpy(image, "image")
        scores = [score_line_art(a) for a in arrays]
        worst = _worst(scores)
        policy = default_policy()
        thresholds = dict(policy.line_quality)
        verdict = judge(worst, thresholds)
        retry_plan = plan
        # M4 re-runs once: a failing retry is reported, not retried again (safer_retry refuses it too).
        already_retried = bool(getattr(plan, "is_retry", False))
        if not verdict.passed and plan is not None and not already_retried:
            retry_plan = safer_retry(
                plan, policy,
                cfg2_step=verdict.retry["cfg2_step"], ip2_step=verdict.retry["ip2_step"],
                denoise2_step=verdict.retry["denoise2_step"],
                reason="line quality failed: " + ", ".join(verdict.failures),
            )
        report = _report(scores, worst, verdict.failures, thresholds)
        if not verdict.passed and already_retried:
            report += "\nthe plan is already a retry: no second retry"
        data = {
            "passed": verdict.passed, "failures": verdict.failures, "retry": verdict.retry,
            "thresholds": thresholds, "scores": [s.to_dict() for s in scores],
            "retried": retry_plan is not plan,
        }
        return io.NodeOutput(
            verdict.passed, worst.broken, worst.dotted, worst.fringe, worst.jitter, worst.stray, report, retry_plan,
            ui={"m4_panel": [{"kind": "line_quality", "title": "Line Quality", "data": data}]},
        )


NODES = [M4LineQualityAnalyzer]
