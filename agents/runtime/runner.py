"""One sketch + reference through the whole M4 pipeline on a ComfyUI server, with the feedback retry.

analyse -> compare -> plan -> prompts -> apply to the locked template -> upload + set LoadImage ->
prepare() -> run on the server -> download -> judge the final image. When the Line Quality
Analyzer fails it, exactly one retry runs with agents.planning.animation_director.safer_retry's values.
Each attempt is its own run-log row (the retry's parent_run is the first), updated stage by stage.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..measure.imaging import load_image
from ..measure.line_quality import judge, retry_steps, score_line_art
from ..measure.reference_cache import reference_measures
from ..planning.animation_director import plan_violations, safer_retry
from ..planning.chain import plan_pair, write_prompts
from ..planning.plan_types import Plan
from ..policy import Policy, default_policy
from .apply_plan import (
    TemplateError,
    Workflow,
    apply_plan,
    load_template,
    plan_from_reports,
    planning_reports,
    set_load_images,
    wire_planning,
)
from .comfyui_client import ComfyClient, ProgressCallback
from .run_log import RunLog

REPO = Path(__file__).resolve().parents[2]
ATTEMPT_LABELS = ("attempt 1", "retry")
ATTEMPT_DIRS = ("attempt-1", "retry")


@dataclass
class PairResult:
    """Both attempts (when the retry ran), each with label, plan, verdict and {stage: image path}."""

    run_ids: list[int]
    attempts: list[dict[str, Any]]
    final_passed: bool
    out_dir: Path
    notes: list[str] = field(default_factory=list)

    @property
    def retried(self) -> bool:
        return len(self.attempts) > 1


def default_template(policy: Policy) -> Path:
    path = Path(policy.template)
    return path if path.is_absolute() else REPO / path


def stage_of(prefix: Any, node_id: str) -> str:
    """'M4/final' -> 'final'; a SaveImage without a text prefix is named by its node id."""
    return str(prefix).replace("\\", "/").rsplit("/", 1)[-1] if isinstance(prefix, str) and prefix else node_id


def _upload_pair(client: ComfyClient, sketch: Path, reference: Path) -> dict[str, str]:
    # Content-addressed: a reference shared by a batch goes to each server once.
    return {"sketch": client.upload_input(sketch), "reference": client.upload_input(reference)}


class _Attempt:
    """One attempt's run-log row: stage changes and timings committed as they happen."""

    def __init__(self, log: RunLog, run_id: int) -> None:
        self.log, self.run_id = log, run_id
        self.timings: dict[str, float] = {}
        self.metrics: dict[str, Any] = {}
        self.stage = "started"

    def stage_start(self, stage: str) -> float:
        self.stage = stage
        self.log.set_stage(self.run_id, stage)
        return time.perf_counter()

    def stage_done(self, stage: str, started: float) -> None:
        self.timings[f"{stage}_s"] = round(time.perf_counter() - started, 4)
        self.log.record(self.run_id, timings=self.timings)

    def log_plan(self, plan: Plan, prompts: dict[str, Any], *, analysis: dict[str, Any],
                 reference: dict[str, Any]) -> None:
        """The first attempt's plan, prompts and the reports it came from, in one write."""
        self.metrics.update(analysis=analysis, reference=reference)
        self.log.record(self.run_id, plan=plan.to_dict(), diagnostics=plan.diagnostics, prompts=prompts,
                        metrics=self.metrics)


def run_pair(client: ComfyClient, *, sketch: Path, reference: Path, out_dir: Path, log: RunLog,
             template: Path | None = None, prepare: Callable[[dict], dict] | None = None, tags: str = "",
             batch_id: str | None = None, force_retry: bool = False, progress: ProgressCallback | None = None,
             policy: Policy | None = None, timeout: float = 600, plan_on_server: bool = False,
             policy_note: dict[str, Any] | None = None,
             adjust_plan: Callable[[Plan], Plan] | None = None) -> PairResult:
    """Run one pair; on a failed verdict (or force_retry) run the one safer retry. See the module doc.

    plan_on_server: the first attempt sends the template with the M4 agent nodes wired in
    (apply_plan.wire_planning), so the server analyses and plans; the plan is read back from /history
    for the log and the retry. Otherwise the agents plan here and the values go in as literals.

    On any exception the current attempt's row is marked 'incomplete' at the stage it reached (its
    error text saved) and the exception is re-raised. policy_note (which policy overlay is in force)
    goes into the locally made plan's diagnostics as `policy_overlay`. adjust_plan (e.g. calibration's
    exploration) may change the locally made first plan before its prompts are built; it must keep the
    hard rules (the plan is checked after it).
    """
    pol = policy or default_policy()
    sketch, reference, out_dir = Path(sketch), Path(reference), Path(out_dir)
    template_path = Path(template) if template is not None else default_template(pol)
    result = PairResult(run_ids=[], attempts=[], final_passed=False, out_dir=out_dir)
    current: _Attempt | None = None

    def begin(attempt: int, parent: int | None) -> _Attempt:
        run_id = log.start_run(sketch=sketch, reference=reference, server=client.url, batch_id=batch_id,
                               attempt=attempt, parent_run=parent)
        result.run_ids.append(run_id)
        log.record(run_id, tags=tags, label=ATTEMPT_LABELS[attempt - 1],
                   out_dir=str(out_dir / ATTEMPT_DIRS[attempt - 1]))
        return _Attempt(log, run_id)

    pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="m4-pair")
    try:
        current = begin(1, None)
        template_wf = load_template(template_path)
        # The uploads (network) and the reference's measurements (pixels) go on beside the sketch's
        # analysis; "uploading" below is only the wait for the uploads that is left after planning.
        uploads = pool.submit(_upload_pair, client, sketch, reference)
        if not plan_on_server:
            t = current.stage_start("planning")
            first = _plan_here(current, sketch, pool.submit(reference_measures, reference), tags, pol,
                               adjust_plan, policy_note)
            current.stage_done("planning", t)

        t = current.stage_start("uploading")
        names = uploads.result()
        current.stage_done("uploading", t)
        if plan_on_server:
            workflow = wire_planning(template_wf, pol, tags=tags)
        else:
            workflow = apply_plan(template_wf, first, pol)
        attempt, entry = _run_attempt(client, current, set_load_images(workflow, pol, **names),
                                      out_dir / ATTEMPT_DIRS[0], pol, prepare, progress, timeout,
                                      label=ATTEMPT_LABELS[0], force_fail=force_retry)
        if plan_on_server:  # the server's agents planned: read their reports back for the log and the retry
            reports = planning_reports(entry)
            first = plan_from_reports(reports)
            current.log_plan(first, dict(first.prompts), analysis=reports["analysis"], reference=reports["reference"])
        attempt["plan"] = first.to_dict()
        result.attempts.append(attempt)
        if attempt["accepted"]:
            log.finish(current.run_id, status="done")
            result.final_passed = True
            return result

        retry_plan = _retry_plan(first, attempt["verdict"], force_retry, pol)
        # The retry row exists before the first is closed, so a crash here never reads as a finished pair.
        first_row = current
        current = begin(2, first_row.run_id)
        log.finish(first_row.run_id, status="done")
        log.record(current.run_id, plan=retry_plan.to_dict(), diagnostics=retry_plan.diagnostics,
                   prompts=dict(retry_plan.prompts))
        attempt, _entry = _run_attempt(client, current, set_load_images(apply_plan(template_wf, retry_plan, pol),
                                                                       pol, **names),
                                       out_dir / ATTEMPT_DIRS[1], pol, prepare, progress, timeout,
                                       label=ATTEMPT_LABELS[1], force_fail=False)
        attempt["plan"] = retry_plan.to_dict()
        result.attempts.append(attempt)
        log.finish(current.run_id, status="done")
        result.final_passed = bool(attempt["verdict"]["passed"])
        return result
    except BaseException as exc:
        if current is not None:
            try:
                log.finish(current.run_id, status="incomplete",
                           error=f"{type(exc).__name__} at stage {current.stage}: {exc}")
            except Exception:  # noqa: S110  (the original error is the one to raise)
                pass
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # an upload still going ends within its own timeout


def _plan_here(row: _Attempt, sketch: Path, reference: Future[Any], tags: str, pol: Policy,
               adjust_plan: Callable[[Plan], Plan] | None, policy_note: dict[str, Any] | None) -> Plan:
    """The first attempt planned in this process (the reference measured on another thread meanwhile),
    adjusted when asked (the prompts follow the new values), logged in one write."""
    planned = plan_pair(load_image(sketch), reference, name=sketch.name, tags=tags, policy=pol)
    first, stage_prompts = planned.plan, planned.prompts
    if adjust_plan is not None:  # e.g. calibration's exploration
        first = adjust_plan(first)
        bad = plan_violations(first, pol)
        if bad:
            raise RuntimeError(f"the adjusted plan breaks {bad}")
        first, stage_prompts = write_prompts(first, planned.analysis, tags, pol)
    if policy_note is not None:
        first.diagnostics["policy_overlay"] = policy_note
    row.log_plan(first, {**stage_prompts.prompts(), "notes": stage_prompts.notes},
                 analysis=planned.analysis.to_dict(), reference=planned.reference.to_dict())
    return first


def _retry_plan(first: Plan, verdict: dict[str, Any], forced: bool, pol: Policy) -> Plan:
    """The one safer retry of a first attempt that was not accepted (its verdict carries the policy's
    steps: the judge puts them there on a fail, _run_attempt when the retry is forced)."""
    reason = ("forced by the caller (force_retry)" if forced and verdict["passed"]
              else "line quality failed: " + ", ".join(verdict["failures"]))
    retry_plan = safer_retry(first, pol, **verdict["retry"], reason=reason)
    bad = plan_violations(retry_plan, pol)
    if bad:  # safer_retry checks its rules; the bounds check here is the belt to its braces
        raise RuntimeError(f"the safer retry plan breaks {bad}")
    return retry_plan


def _run_attempt(client: ComfyClient, row: _Attempt, workflow: Workflow, dest: Path, pol: Policy,
                 prepare: Callable[[dict], dict] | None, progress: ProgressCallback | None,
                 timeout: float, *, label: str, force_fail: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """Send one workflow, fetch its images and judge the final one; returns (attempt, history entry)."""
    log = row.log
    t = row.stage_start("applying")
    if prepare is not None:
        workflow = prepare(workflow)
        if not isinstance(workflow, dict):
            raise TypeError(f"prepare: must return the API prompt dict, returned {type(workflow).__name__}")
    save_nodes = {nid: stage_of(node.get("inputs", {}).get("filename_prefix"), nid)
                  for nid, node in workflow.items() if node.get("class_type") == "SaveImage"}
    if not save_nodes:
        raise TemplateError("the workflow has no SaveImage node: nothing to judge")
    log.record(row.run_id, workflow=workflow)
    row.stage_done("applying", t)

    t = row.stage_start("running")
    entry = client.run(workflow, timeout=timeout, progress=progress)
    row.stage_done("running", t)

    t = row.stage_start("downloading")
    images: dict[str, Path] = {}
    saved = client.download_by_node(entry, dest, node_ids=list(save_nodes))  # one call: equal names kept apart
    for node_id, stage in save_nodes.items():
        if not saved.get(node_id):
            raise TemplateError(f"SaveImage node {node_id} ({stage}) produced no image")
        images[stage] = saved[node_id][0]
    log.record(row.run_id, images={k: str(v) for k, v in images.items()})
    row.stage_done("downloading", t)

    t = row.stage_start("judging")
    # The contract's final SaveImage is judged; a prepared workflow without it falls back to the last one.
    final_node = pol.template_contract.saves["final"]
    final = images[save_nodes[final_node]] if final_node in save_nodes else images[list(save_nodes.values())[-1]]
    scores = score_line_art(load_image(final))
    verdict = judge(scores, pol.line_quality)
    verdict_d = verdict.to_dict()
    if force_fail:
        verdict_d["forced_retry"] = True
        if not verdict.retry:  # a passing image still needs the policy's steps to retry with
            verdict_d["retry"] = retry_steps(pol.line_quality)
    accepted = verdict.passed and not force_fail
    # accepted by the feedback pass; a first attempt with accepted = 0 is not a finished pair.
    row.metrics.update(line_quality=scores.to_dict(), final_image=str(final))
    log.record(row.run_id, verdict=verdict_d, accepted=accepted, metrics=row.metrics)
    row.stage_done("judging", t)
    prompt_id = entry.get("prompt", [None, None])[1] if isinstance(entry.get("prompt"), list) else None
    return {"label": label, "verdict": verdict_d, "images": images, "accepted": accepted, "run_id": row.run_id,
            "prompt_id": prompt_id}, entry
