"""M4RunLogger and M4RateRun: canvas runs written to the same SQLite run log `./m4 run` uses (in ComfyUI's user
directory), and a person's rating of a logged run, so `./m4 calibrate` learns from canvas runs too."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np
from comfy_api.v0_0_2 import io

from ..agents.measure.line_quality import judge, score_line_art
from ..agents.policy import default_policy
from ..agents.runtime.run_log import RunLog, RunLogError
from .combo_check import combo_verdict, require_combos
from .convert import image_batch_to_numpy
from .plan_sockets import first_analysis, plan_input, reference_input
from .types import CATEGORY, Analysis, Plan, ReferenceReport

OFF_ENV = "M4_RUN_LOG_OFF"  # set to 1 to switch canvas logging off for the whole server


def _log_path() -> Path:
    import folder_paths

    return RunLog.default_path(Path(folder_paths.get_user_directory()))


def _sha(arr: np.ndarray) -> str:
    digest = hashlib.sha256(str(arr.shape).encode())
    digest.update(np.ascontiguousarray((np.clip(arr, 0, 1) * 255).astype(np.uint8)).tobytes())
    return digest.hexdigest()


class M4RunLogger(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="M4RunLogger",
            is_output_node=True,
            display_name="M4 Run Logger",
            category=f"{CATEGORY}/calibration",
            description=(
                "Writes this canvas run to the M4 run log (m4_director/m4_runs.sqlite3 in ComfyUI's user "
                "folder): the inputs by hash, the analysis, the reference report, the plan with its "
                "diagnostics and prompts, the output image's hash and its Line Quality verdict. "
                "`./m4 rate` or M4 Rate Run rates it; `./m4 calibrate` learns from it. Off with the switch "
                f"or the {OFF_ENV}=1 environment variable."
            ),
            inputs=[
                io.Image.Input("image", tooltip="The final generated image (judged by the Line Quality rules)."),
                Plan.Input("plan", tooltip="The M4 plan that produced the image."),
                Analysis.Input("analysis", tooltip="From M4 Visual Analyst (the first of a batch is logged)."),
                ReferenceReport.Input("reference_report", optional=True, tooltip="From M4 Reference Compare."),
                io.Image.Input("sketch", optional=True, tooltip="The sketch, hashed to recognise the same pair later."),
                io.Boolean.Input("enabled", default=True, tooltip="Off: nothing is written."),
            ],
            outputs=[
                io.Int.Output("run_id", display_name="run_id", tooltip="The logged run's id (-1 when logging is off)."),
                io.String.Output("report", display_name="report", tooltip="What was logged, and where."),
            ],
        )

    @classmethod
    def execute(cls, image: Any, plan: Any, analysis: Any, reference_report: Any = None, sketch: Any = None,
                enabled: bool = True) -> io.NodeOutput:
        if not enabled or os.environ.get(OFF_ENV, "").strip() not in ("", "0"):
            return io.NodeOutput(-1, "run logging is off", ui={"text": ["run logging is off"]})
        p = plan_input(plan)
        a, _n = first_analysis(analysis)
        ref = reference_input(reference_report)
        final = image_batch_to_numpy(image, "image")[0]
        scores = score_line_art(final)
        verdict = judge(scores, dict(default_policy().line_quality))
        sketch_sha = _sha(image_batch_to_numpy(sketch, "sketch")[0]) if sketch is not None else _sha(final)
        path = _log_path()
        with RunLog(path) as log:
            run_id = log.start_hashed_run(sketch_name=a.image_name, sketch_sha256=sketch_sha,
                                          reference_name="canvas reference" if ref.present else None,
                                          reference_sha256=None, server="canvas")
            log.record(run_id, plan=p.to_dict(), diagnostics=p.diagnostics, prompts=dict(p.prompts),
                       metrics={"analysis": a.to_dict(), "reference": ref.to_dict(),
                                "line_quality": scores.to_dict(), "final_image_sha256": _sha(final)},
                       verdict=verdict.to_dict(), accepted=verdict.passed, label="canvas")
            log.set_stage(run_id, "judged")
            log.finish(run_id, status="done")
        text = f"run {run_id} logged ({'pass' if verdict.passed else 'fail'}) to {path}"
        panel = {"kind": "run_log", "title": "Run logged", "data": {
            "run_id": run_id, "verdict": "pass" if verdict.passed else "fail", "case": p.case,
            "log": path.name, "rate it": "M4 Rate Run, or ./m4 rate RUN good|bad"}}
        return io.NodeOutput(run_id, text, ui={"text": [text], "m4_panel": [panel]})


class M4RateRun(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="M4RateRun",
            is_output_node=True,
            display_name="M4 Rate Run",
            category=f"{CATEGORY}/calibration",
            description=("A person's verdict on a logged run (good or bad), stored apart from the automatic "
                         "verdict in the same run log; `./m4 calibrate` prefers it."),
            inputs=[
                io.Int.Input("run_id", default=1, min=1, tooltip="The run to rate (M4 Run Logger's run_id)."),
                io.Combo.Input("rating", options=["good", "bad"], default="good", tooltip="Your verdict."),
                io.String.Input("note", default="", multiline=False, tooltip="Why (optional)."),
            ],
            outputs=[io.String.Output("report", display_name="report", tooltip="What was stored.")],
        )

    @classmethod
    def validate_inputs(cls, rating: str | None = None) -> bool | str:
        return combo_verdict(cls, rating=rating)  # nodes/combo_check.py

    @classmethod
    def execute(cls, run_id: int, rating: str, note: str = "") -> io.NodeOutput:
        require_combos(cls, {"rating": rating})
        path = _log_path()
        if not path.is_file():
            raise ValueError(f"run_id: no run log at {path} yet (M4 Run Logger or ./m4 run writes it)")
        with RunLog(path) as log:
            try:
                log.rate(int(run_id), rating, note=note or None, source="canvas")
            except RunLogError as exc:
                raise ValueError(str(exc)) from None
        text = f"run {run_id} rated {rating}"
        panel = {"kind": "run_log", "title": "Run rated", "data": {"run_id": int(run_id), "rating": rating,
                                                                   "note": note or "—", "log": path.name}}
        return io.NodeOutput(text, ui={"text": [text], "m4_panel": [panel]})


NODES = [M4RunLogger, M4RateRun]
