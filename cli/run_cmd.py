"""`./m4 run`: one sketch + reference through the locked template on a ComfyUI server, judged, retried once.

With --server URL the pair runs on that server with its own models (add --standins when that server only
has this pack's generated stand-in checkpoint and ControlNet). Without --server the command starts a
headless ComfyUI on this machine itself, with RANDOM-WEIGHT STAND-IN models. Every run is a row in the
SQLite run log (./m4 runs queries it); the per-run report is <out>/report.html.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agents.guidance.data import EVENT
from agents.runtime.comfyui_client import ComfyClient, ComfyClientError
from cli.runs_cmd import DEFAULT_LOG

REPO = Path(__file__).resolve().parents[1]
TEMPLATES = {"static": REPO / "workflows" / "api" / "Animation_Workflow_M4_Api.json",
             "adaptive": REPO / "workflows" / "api" / "Animation_Workflow_M4_Adaptive_Api.json"}
# The generated stand-ins' file-name stems (cli/standin_checkpoint.py): how --standins finds them on a server.
STANDIN_CHECKPOINT_STEM = "m4-standin-sd15"
STANDIN_CONTROLNET_STEM = "m4-standin-controlnet-sd15"
GUIDANCE_EVENT = EVENT  # the one spelling: agents.guidance.data.EVENT


class RunInputError(ValueError):
    """A command-line value cannot be used; the message names the option."""


class RecordingClient(ComfyClient):
    """A ComfyClient that keeps, per prompt it waited for, the history entry and the adaptive-CFG events.

    The per-run report draws the schedule from the m4.guidance websocket events; the client benchmark
    reads the server's own execution time from the history entries' status timestamps.
    """

    def __init__(self, url: str, **kwargs: Any) -> None:
        super().__init__(url, **kwargs)
        self.waited: list[str] = []
        self.entries: dict[str, dict[str, Any]] = {}
        self.guidance: dict[str, list[dict[str, Any]]] = {}
        # Wall-clock time each prompt was accepted (POST /prompt answered; the server stamps wall time), so
        # the benchmark counts the websocket connect and the POST round trip as the client's.
        self.submitted: dict[str, float] = {}

    def _recorder(self, on_message: Callable[[str, dict[str, Any]], None] | None,
                  events: list[dict[str, Any]]) -> Callable[[str, dict[str, Any]], None]:
        def record(kind: str, data: dict[str, Any]) -> None:
            if kind == GUIDANCE_EVENT:
                events.append(dict(data))
            if on_message is not None:
                on_message(kind, data)

        return record

    def _keep(self, entry: dict[str, Any], events: list[dict[str, Any]]) -> None:
        prompt = entry.get("prompt")
        pid = str(prompt[1]) if isinstance(prompt, list) and len(prompt) > 1 else f"#{len(self.waited)}"
        self.waited.append(pid)
        self.entries[pid] = entry
        self.guidance[pid] = events

    def run(self, prompt: dict[str, Any], *, timeout: float = 600, progress: Any = None,
            on_message: Callable[[str, dict[str, Any]], None] | None = None) -> dict[str, Any]:
        events: list[dict[str, Any]] = []
        entry = super().run(prompt, timeout=timeout, progress=progress, on_message=self._recorder(on_message, events))
        self._keep(entry, events)
        return entry

    def submit(self, prompt: dict[str, Any], *, client_id: str | None = None) -> str:
        prompt_id = super().submit(prompt, client_id=client_id)
        self.submitted[prompt_id] = time.time()
        return prompt_id


def status_stamps(entry: dict[str, Any]) -> dict[str, Any]:
    """{status message: wall-clock timestamp in ms} from a /history entry."""
    stamps = {}
    for message in (entry.get("status") or {}).get("messages", []):
        if isinstance(message, list | tuple) and len(message) == 2 and isinstance(message[1], dict):
            stamps[message[0]] = message[1].get("timestamp")
    return stamps


def server_seconds(entry: dict[str, Any]) -> float | None:
    """The server's own execution time of one prompt: execution_start -> success/error in the history status."""
    stamps = status_stamps(entry)
    start = stamps.get("execution_start")
    end = stamps.get("execution_success") or stamps.get("execution_error") or stamps.get("execution_interrupted")
    if isinstance(start, int | float) and isinstance(end, int | float):
        return (end - start) / 1000.0
    return None


def resolve_template(value: str | None) -> Path | None:
    """--template: 'static', 'adaptive' or a path to an API-format template; None = the policy's template."""
    if value is None:
        return None
    path = TEMPLATES.get(value) or Path(value)
    if not path.is_file():
        raise RunInputError(f"--template: {value!r} is neither 'static', 'adaptive' nor an existing file")
    return path.resolve()


def standin_names(info: dict[str, Any], url: str) -> tuple[str, str]:
    """The stand-in checkpoint and ControlNet file names a server offers (from its /object_info)."""
    def options(node: str, name: str) -> list[str]:
        spec = (info.get(node, {}).get("input", {}).get("required", {}) or {}).get(name) or [[]]
        if not isinstance(spec, list | tuple) or not spec:
            return []
        if spec[0] == "COMBO":
            values = spec[1].get("options", []) if len(spec) > 1 and isinstance(spec[1], dict) else []
        else:
            values = spec[0]
        return [str(v) for v in values] if isinstance(values, list) else []

    ckpt = [n for n in options("CheckpointLoaderSimple", "ckpt_name") if n.startswith(STANDIN_CHECKPOINT_STEM)]
    cnet = [n for n in options("ControlNetLoader", "control_net_name") if n.startswith(STANDIN_CONTROLNET_STEM)]
    if not ckpt or not cnet:
        raise RunInputError(f"--standins: the server {url} has no generated stand-in "
                            f"{'checkpoint' if not ckpt else 'ControlNet'} ({STANDIN_CHECKPOINT_STEM}*.safetensors / "
                            f"{STANDIN_CONTROLNET_STEM}*.safetensors in its models folders)")
    return ckpt[0], cnet[0]


def missing_node_types(info: dict[str, Any], template: Path | None) -> list[str]:
    from agents.policy import default_policy
    from agents.runtime.apply_plan import load_template

    path = template or (REPO / default_policy().template)
    return sorted({node["class_type"] for node in load_template(path).values()} - set(info))


def standin_prepare(checkpoint: str, controlnet: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """The run_pair hook that swaps the template's models for the stand-ins (loudly: see swap_in_standins)."""
    from cli.template_run import swap_in_standins

    def prepare(prompt: dict[str, Any]) -> dict[str, Any]:
        return swap_in_standins(prompt, checkpoint=checkpoint, controlnet=controlnet).workflow

    return prepare


@dataclass
class ServerTarget:
    """One server a pair can run on, with the hook that makes the template runnable there."""

    url: str
    prepare: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    standins: bool = False
    problems: list[str] = field(default_factory=list)


def connect(url: str, *, standins: bool, template: Path | None) -> ServerTarget:
    """Check a server answers and has every node type the template needs; find its stand-ins if asked."""
    info = ComfyClient(url).object_info()
    missing = missing_node_types(info, template)
    if missing:
        raise RunInputError(f"--server {url}: lacks node type(s) {missing} the template needs "
                            "(install the node packs the template uses)")
    if not standins:
        return ServerTarget(url)
    checkpoint, controlnet = standin_names(info, url)
    return ServerTarget(url, standin_prepare(checkpoint, controlnet), True)


def pair_report(result: Any, client: RecordingClient, log: Any, *, sketch: Path, reference: Path | None,
                target: ServerTarget) -> Path:
    """Write <out_dir>/report.html (and plan.json) for a finished run_pair, both attempts included."""
    from cli.report import write_run_report

    attempts = []
    for attempt, prompt_id in zip(result.attempts, client.waited[-len(result.attempts):], strict=False):
        attempts.append({**attempt, "schedule": client.guidance.get(prompt_id, [])})
    first = log.get(result.run_ids[0])  # run_pair keeps the analysis and reference report in its metrics
    metrics = first.get("metrics") or {}
    plan = first.get("plan") or (result.attempts[0].get("plan") if result.attempts else {}) or {}
    data = {
        "analysis": metrics.get("analysis", {}), "reference": metrics.get("reference", {}), "plan": plan,
        "prompts": first.get("prompts") or plan.get("prompts", {}), "run_ids": list(result.run_ids),
        "server": target.url, "standin_models": target.standins, "final_passed": result.final_passed,
        "inputs": {"sketch": str(sketch), "reference": str(reference) if reference else None},
        "attempts": [{**{k: v for k, v in a.items() if k not in ("images", "schedule")},
                      "images": {s: str(p) for s, p in (a.get("images") or {}).items()},
                      "schedule_calls": len(a.get("schedule") or [])} for a in attempts],
    }
    title = f"{sketch.name} + {reference.name if reference else 'no reference'}"
    return write_run_report(Path(result.out_dir), title=title, sketch=sketch, reference=reference,
                            result=data, attempts=attempts, server=target.url, standins=target.standins)


def progress_printer(label: str) -> Callable[[dict[str, Any]], None]:
    def progress(event: dict[str, Any]) -> None:
        if event.get("type") == "executing" and event.get("node"):
            print(f"{label}:   node {event['node']} {event.get('class_type') or ''}".rstrip(), flush=True)
        elif event.get("type") == "progress" and event.get("max") and event.get("value") == event.get("max"):
            print(f"{label}:   node {event.get('node')} {event['value']}/{event['max']} steps", flush=True)

    return progress


def run_one(target: ServerTarget, *, sketch: Path, reference: Path, out_dir: Path, log: Any,
            template: Path | None, tags: str, batch_id: str | None = None, force_retry: bool = False,
            progress: Callable[[dict[str, Any]], None] | None = None, report: bool = True,
            plan_on_server: bool = False, policy: Any = None,
            policy_note: dict[str, Any] | None = None, adjust_plan: Any = None) -> tuple[Any, Path | None]:
    """run_pair on one server plus its report; the exceptions of run_pair pass through (the log row is marked)."""
    from agents.runtime.runner import run_pair

    with RecordingClient(target.url) as client:
        result = run_pair(client, sketch=sketch, reference=reference, out_dir=out_dir, log=log, template=template,
                          prepare=target.prepare, tags=tags, batch_id=batch_id, force_retry=force_retry,
                          progress=progress, plan_on_server=plan_on_server, policy=policy,
                          policy_note=policy_note, adjust_plan=adjust_plan)
        page = pair_report(result, client, log, sketch=sketch, reference=reference, target=target) if report else None
    return result, page


def open_log(path: str | Path) -> Any:
    """The run log at path (created with its folder); a file that is not a run log is refused first."""
    from agents.runtime.run_log import RunLog, check_log_file

    path = Path(path).expanduser().resolve()
    check_log_file(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return RunLog(path)


def add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--server", action="append", default=[],
                        help="ComfyUI URL, e.g. http://127.0.0.1:8188; default: start a headless one here "
                             "with RANDOM-WEIGHT STAND-IN models")
    parser.add_argument("--standins", action="store_true",
                        help="the given server(s) only have this pack's generated stand-in models: swap them in")
    parser.add_argument("--template", help="'static', 'adaptive' or an API template path (default: the policy's)")
    parser.add_argument("--tags", default="", help="subject tags for the prompts, comma separated")
    parser.add_argument("--log", default=str(DEFAULT_LOG),
                        help=f"SQLite run log (default: $M4_RUN_LOG or ./{DEFAULT_LOG})")
    parser.add_argument("--force-retry", action="store_true",
                        help="treat every first attempt as failed (shows the safer retry)")
    parser.add_argument("--allow-blank", action="store_true",
                        help="run a sketch the Visual Analyst finds no strokes in (blank, uniform or noise only); "
                             "by default it is refused (run) or skipped (batch) before any generation")
    parser.add_argument("--plan-on-server", action="store_true",
                        help="let the server's M4 nodes analyse and plan inside the graph (the API twin of the "
                             "drag-and-drop preset) instead of planning here; the retry still plans here")
    from cli.overlay_hook import add_overlay_arguments

    add_overlay_arguments(parser)


def start_local_servers(count: int) -> list[Any]:
    """Headless ComfyUI servers on this machine with the stand-in models (and the third-party stand-ins)."""
    from cli.demo import STANDIN_BANNER, STANDIN_NODES, STANDIN_NODES_FOLDER
    from cli.local_comfy import LocalComfy

    print(STANDIN_BANNER, flush=True)
    extra = {STANDIN_NODES_FOLDER: STANDIN_NODES} if (STANDIN_NODES / "__init__.py").is_file() else {}
    servers = []
    try:
        for i in range(count):
            t0 = time.monotonic()
            print(f"[m4] starting headless ComfyUI {i + 1}/{count} (CPU, stand-in models) ...", flush=True)
            local = LocalComfy(with_checkpoint=True, extra_custom_nodes=extra, threads=1)
            local.start()
            servers.append(local)
            print(f"[m4] ComfyUI ready at {local.url} in {time.monotonic() - t0:.1f} s", flush=True)
    except BaseException:
        for local in servers:
            local.stop()
        raise
    return servers


def check_server_urls(urls: list[str]) -> None:
    """--server values are http(s)://host[:port] URLs (RunInputError naming the value otherwise)."""
    for url in urls:
        try:
            ComfyClient(url).close()
        except ValueError as exc:
            raise RunInputError(f"--server: {exc}") from None


def joining_background(body: Callable[[list[str] | None, list[threading.Thread]], int],
                       argv: list[str] | None) -> int:
    """Run a command's body, then wait for the threads it started (the reference prefetch): a thread still
    inside OpenCV at interpreter shutdown aborts the process (SIGABRT)."""
    background: list[threading.Thread] = []
    try:
        return body(argv, background)
    finally:
        for thread in background:
            thread.join()


def main(argv: list[str] | None = None) -> int:
    return joining_background(_main, argv)


def _main(argv: list[str] | None, background: list[threading.Thread]) -> int:
    parser = argparse.ArgumentParser(prog="./m4 run", description=__doc__.splitlines()[0])
    parser.add_argument("--sketch", required=True, help="the sketch image")
    parser.add_argument("--reference", required=True, help="the style reference image")
    parser.add_argument("--out", default=None, help="output folder (default: ./m4-output/<sketch stem>)")
    add_common(parser)
    args = parser.parse_args(argv)
    if len(args.server) > 1:
        parser.error("--server: `run` takes one server (`batch` fans out across several)")
    from agents.runtime.run_log import RunLogError, check_log_file
    from cli.inputs import BLANK_HINT, InputError, blank_sketch, error_line, resolve_pairs

    try:
        [(sketch, reference)] = resolve_pairs([args.sketch], args.reference, False)
        template = resolve_template(args.template)
        check_server_urls(args.server)
        check_log_file(Path(args.log).expanduser())
        blank = None if args.allow_blank else blank_sketch(sketch)
        if blank:
            raise InputError(f"--sketch {sketch.name}: {blank}: {BLANK_HINT}")
    except (InputError, RunInputError, RunLogError) as exc:
        print(error_line(exc), file=sys.stderr)
        return 2
    assert reference is not None  # noqa: S101  (resolve_pairs keeps the required --reference)
    if not args.plan_on_server:  # measured while the server starts or answers /object_info
        from agents.measure.reference_cache import prefetch_reference

        background.append(prefetch_reference(reference))
    out_dir = Path(args.out).resolve() if args.out else Path("m4-output").resolve() / sketch.stem
    local_servers = [] if args.server else start_local_servers(1)
    try:
        try:
            url = args.server[0] if args.server else local_servers[0].url
            target = connect(url, standins=args.standins or not args.server, template=template)
        except (RunInputError, ComfyClientError) as exc:
            print(error_line(exc), file=sys.stderr)
            return 2
        from cli.overlay_hook import exploration, resolve_policy

        policy, policy_note = resolve_policy(args, args.log, "m4 run")
        with open_log(args.log) as log:
            print(f"[m4 run] {sketch.name} + {reference.name} on {target.url}"
                  + (" (STAND-IN models)" if target.standins else "") + f"; log {Path(args.log).resolve()}",
                  flush=True)
            t0 = time.monotonic()
            try:
                result, page = run_one(target, sketch=sketch, reference=reference, out_dir=out_dir, log=log,
                                       template=template, tags=args.tags, force_retry=args.force_retry,
                                       plan_on_server=args.plan_on_server, policy=policy, policy_note=policy_note,
                                       adjust_plan=exploration(args, policy),
                                       progress=progress_printer(f"[m4 run] {sketch.name}"))
            except (ComfyClientError, ValueError) as exc:
                print(error_line(f"the run did not finish: {exc} (the log row is marked incomplete; run again "
                                 "to retry)"), file=sys.stderr)
                return 2
        verdicts = ", ".join(f"{a['label']}: {'pass' if (a.get('verdict') or {}).get('passed') else 'fail'}"
                             for a in result.attempts)
        print(f"[m4 run] {len(result.attempts)} attempt(s) ({verdicts}) in {time.monotonic() - t0:.1f} s; "
              f"run id(s) {result.run_ids}; report {page}")
        return 0
    finally:
        for local in local_servers:
            local.stop()
