"""One sketch + reference through the whole M4 pipeline on a ComfyUI server, with the feedback retry.

analyse -> compare -> plan -> prompts -> apply to the locked template -> upload + set LoadImage ->
prepare() -> run on the server -> download -> judge the final image. When the Line Quality
Analyzer fails it, exactly one retry runs with agents.planning.animation_director.safer_retry's values.
Each attempt is its own run-log row (the retry's parent_run is the first), updated stage by stage.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..measure.image_features import WORK_SIDE as COMPARE_SIDE
from ..measure.imaging import check_image, decode_image, load_image, to_rgb_float_within
from ..measure.line_quality import judge, retry_steps, score_line_art
from ..measure.reference_compare import ImageMeasures, compare, measure_image
from ..measure.strokes import WORK_SIDE as ANALYSIS_SIDE
from ..measure.visual_analyst import analyse
from ..planning.animation_director import plan as make_plan
from ..planning.animation_director import plan_violations, safer_retry
from ..planning.plan_types import Plan
from ..planning.prompt_engineer import build_prompts, parse_tags
from ..policy import Policy, default_policy
from .apply_plan import (
    TemplateError,
    Workflow,
    apply_plan,
    load_template,
    plan_from_reports,
    planning_reports,
    wire_planning,
)
from .comfyui_client import ComfyClient, ProgressCallback
from .run_log import RunLog

REPO = Path(__file__).resolve().parents[2]
# LoadImage node ids of the locked templates.
SKETCH_NODE = "10"
REFERENCE_NODE = "11"
FINAL_STAGE = "final"
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


def set_load_images(workflow: Workflow, *, sketch: str, reference: str) -> Workflow:
    """Point the template's LoadImage nodes ("10" sketch, "11" reference) at uploaded images."""
    out = {k: dict(v, inputs=dict(v.get("inputs", {}))) for k, v in workflow.items()}
    for node_id, role, name in ((SKETCH_NODE, "sketch", sketch), (REFERENCE_NODE, "reference", reference)):
        node = out.get(node_id)
        if node is None or node.get("class_type") != "LoadImage":
            raise TemplateError(f"template node '{node_id}' ({role}): expected a LoadImage node, "
                                f"found {None if node is None else node.get('class_type')!r}")
        node["inputs"]["image"] = name
    return out


def stage_of(prefix: Any, node_id: str) -> str:
    """'M4/final' -> 'final'; a SaveImage without a text prefix is named by its node id."""
    return str(prefix).replace("\\", "/").rsplit("/", 1)[-1] if isinstance(prefix, str) and prefix else node_id


# One style reference usually serves a whole batch of sketches: its measurements (a few KB) are kept by
# the file's content hash, so each further pair skips decoding and measuring it again (~45 ms here).
# Entries are futures: a second thread asking for a reference being measured waits for that result.
_REFERENCE_CACHE_SIZE = 8
_reference_cache: OrderedDict[str, Future[ImageMeasures]] = OrderedDict()
_reference_lock = threading.Lock()  # batch runs pairs on several threads


def reference_measures(path: Path) -> ImageMeasures:
    """Reference Compare's measurements of the reference file at `path`, from the cache when its bytes
    were measured (or are being measured) before in this process."""
    check_image(path)  # existence and declared size before the whole file is read
    data = path.read_bytes()
    key = hashlib.sha256(data).hexdigest()
    owner = False
    with _reference_lock:
        pending = _reference_cache.get(key)
        if pending is not None:
            _reference_cache.move_to_end(key)
        else:
            pending = _reference_cache[key] = Future()
            owner = True
            while len(_reference_cache) > _REFERENCE_CACHE_SIZE:
                _reference_cache.popitem(last=False)
    if owner:
        try:
            pending.set_result(measure_image(decode_image(data, path.name), path.name))
        except BaseException as exc:
            pending.set_exception(exc)
            with _reference_lock:  # a failure is not kept: the next call tries again
                if _reference_cache.get(key) is pending:
                    del _reference_cache[key]
    return pending.result()


def prefetch_reference(path: Path) -> threading.Thread:
    """Start measuring a reference on a background thread (the CLI does while it connects to the server);
    run_pair then finds it done or waits for it. Errors surface in run_pair, named, not here. The caller
    joins the thread before the process exits (a thread still inside OpenCV at shutdown aborts it)."""
    def measure() -> None:
        try:
            reference_measures(path)
        except Exception:  # noqa: S110  (run_pair reports it with the stage it failed in)
            pass

    thread = threading.Thread(target=measure, name="m4-reference-prefetch", daemon=True)
    thread.start()
    return thread


def clear_reference_cache() -> None:
    """Forget every cached reference measurement."""
    with _reference_lock:
        _reference_cache.clear()


def _plan_request(sketch: Path, reference: Path | Future[ImageMeasures], tags: str,
                  pol: Policy) -> tuple[Any, Any, Plan]:
    """Analyse, compare, plan. `reference` may be a future of its measurements, taken on another thread
    while the sketch is analysed here (the pixel work releases the GIL, so two cores share it)."""
    # Both agents shrink to a fixed working size first: convert and shrink the sketch once, not per agent.
    side = max(COMPARE_SIDE, ANALYSIS_SIDE)
    sketch_img, _ = to_rgb_float_within(load_image(sketch), side, sketch.name)
    analysis = analyse(sketch_img, name=sketch.name, text_tags=tags or None)
    measured = reference.result() if isinstance(reference, Future) else reference_measures(reference)
    report = compare(sketch_img, measured, sketch_tags=tags or None)
    return analysis, report, make_plan(analysis, report, pol)


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
             policy: Policy | None = None, timeout: float = 600, plan_on_server: bool = False) -> PairResult:
    """Run one pair; on a failed verdict (or force_retry) run the one safer retry. See the module doc.

    plan_on_server: the first attempt sends the template with the M4 agent nodes wired in
    (apply_plan.wire_planning), so the server analyses and plans; the plan is read back from /history
    for the log and the retry. Otherwise the agents plan here and the values go in as literals.

    On any exception the current attempt's row is marked 'incomplete' at the stage it reached (its
    error text saved) and the exception is re-raised.
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
            analysis, report, first = _plan_request(sketch, pool.submit(reference_measures, reference), tags, pol)
            prompts = build_prompts(first, analysis, parse_tags(tags) if tags else None, pol)
            first = first.with_prompts(prompts.prompts())
            current.log_plan(first, {**prompts.prompts(), "notes": prompts.notes},
                             analysis=analysis.to_dict(), reference=report.to_dict())
            current.stage_done("planning", t)

        t = current.stage_start("uploading")
        names = uploads.result()
        current.stage_done("uploading", t)
        if plan_on_server:
            workflow = wire_planning(template_wf, pol, sketch_node=SKETCH_NODE, reference_node=REFERENCE_NODE,
                                     tags=tags)
        else:
            workflow = apply_plan(template_wf, first, pol)
        attempt, entry = _run_attempt(client, current, set_load_images(workflow, **names),
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

        verdict = attempt["verdict"]
        reason = ("forced by the caller (force_retry)" if force_retry and verdict["passed"]
                  else "line quality failed: " + ", ".join(verdict["failures"]))
        # Not accepted, so the verdict carries the policy's steps (judge on a fail, _run_attempt when forced).
        retry_plan = safer_retry(first, pol, **verdict["retry"], reason=reason)
        bad = plan_violations(retry_plan, pol)
        if bad:  # safer_retry checks its rules; the bounds check here is the belt to its braces
            raise RuntimeError(f"the safer retry plan breaks {bad}")
        # The retry row exists before the first is closed, so a crash here never reads as a finished pair.
        first_row = current
        current = begin(2, first_row.run_id)
        log.finish(first_row.run_id, status="done")
        log.record(current.run_id, plan=retry_plan.to_dict(), diagnostics=retry_plan.diagnostics,
                   prompts=dict(retry_plan.prompts))
        attempt, _entry = _run_attempt(client, current, set_load_images(apply_plan(template_wf, retry_plan, pol),
                                                                       **names),
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
    final = images.get(FINAL_STAGE) or images[list(save_nodes.values())[-1]]
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
