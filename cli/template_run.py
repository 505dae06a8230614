"""Run a locked M4 API template on a local ComfyUI with TEST STAND-IN models.

!!! The images this produces come from RANDOM-WEIGHT STAND-IN models, not from Animagine XL 3.1 or
!!! ControlNet Union SDXL. They prove the graph wires up and executes with the plan's values; they say
!!! nothing about image quality.

No real model can be downloaded here, so `swap_in_standins` replaces the template's model file names
with the stand-in checkpoint and ControlNet (cli/standin_checkpoint.py), shrinks ImageScale (and the
pose preprocessor's resolution) to a tiny size and caps the sampler steps, and reports every change it
made. With real models in ComfyUI's models/ folders, a template is queued as it is, without this step.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from agents.runtime.apply_plan import TemplateError, Workflow
from cli.local_comfy import MessageCallback, Progress

log = logging.getLogger("m4.template_run")

STANDIN_NOTICE = ("TEST STAND-IN MODELS: the checkpoint and the ControlNet are random-weight stand-ins "
                  "(not Animagine XL 3.1 / ControlNet Union SDXL); images show the graph runs, not what it draws")
STANDIN_SIZE = 64
STANDIN_MAX_STEPS = 3


@dataclass
class StandinSwap:
    """A template made runnable on the stand-ins, and every (node, input, before, after) it changed."""

    workflow: Workflow
    changes: list[tuple[str, str, Any, Any]] = field(default_factory=list)
    notice: str = STANDIN_NOTICE

    def describe(self) -> str:
        lines = [self.notice]
        lines += [f"  node {nid} {name}: {before!r} -> {after!r}" for nid, name, before, after in self.changes]
        return "\n".join(lines)


def swap_in_standins(template: Workflow, *, checkpoint: str, controlnet: str, size: int = STANDIN_SIZE,
                     max_steps: int = STANDIN_MAX_STEPS) -> StandinSwap:
    """SWAPS THE TEMPLATE'S MODELS FOR RANDOM-WEIGHT TEST STAND-INS (a copy; the template is untouched).

    Every CheckpointLoaderSimple gets `checkpoint` and every ControlNetLoader `controlnet`; every
    ImageScale becomes size x size, every OpenposePreprocessor resolution becomes size, and every
    KSampler runs at most max_steps steps. The result lists each change and carries STANDIN_NOTICE;
    the swap is also logged as a warning, so nobody mistakes the output for the real model's.
    """
    if size < 64 or size % 8:
        raise ValueError(f"size: {size} is not usable; the stand-in needs a multiple of 8, at least 64")
    if max_steps < 1:
        raise ValueError(f"max_steps: {max_steps} must be at least 1")
    out = copy.deepcopy(template)
    changes: list[tuple[str, str, Any, Any]] = []

    def put(node_id: str, name: str, value: Any) -> None:
        inputs = out[node_id].setdefault("inputs", {})
        if inputs.get(name) != value:
            changes.append((node_id, name, inputs.get(name), value))
            inputs[name] = value

    swapped_models = 0
    for node_id, node in out.items():
        kind = node.get("class_type")
        inputs = node.get("inputs", {})
        if kind == "CheckpointLoaderSimple":
            put(node_id, "ckpt_name", checkpoint)
            swapped_models += 1
        elif kind == "ControlNetLoader":
            put(node_id, "control_net_name", controlnet)
            swapped_models += 1
        elif kind == "ImageScale":
            put(node_id, "width", size)
            put(node_id, "height", size)
        elif kind == "OpenposePreprocessor" and "resolution" in inputs:
            put(node_id, "resolution", size)
        elif kind == "KSampler" and isinstance(inputs.get("steps"), int) and inputs["steps"] > max_steps:
            put(node_id, "steps", max_steps)
    if swapped_models == 0:
        raise TemplateError("the template has no CheckpointLoaderSimple or ControlNetLoader to swap for stand-ins")
    swap = StandinSwap(out, changes)
    log.warning("%s", swap.describe())
    return swap


def stage_nodes(workflow: Workflow) -> dict[str, str]:
    """{stage: SaveImage node id}, the policy's template contract ([template.saves])."""
    from agents.policy import default_policy

    found = dict(default_policy().template_contract.saves)
    wrong = sorted(f"{node_id} ({stage})" for stage, node_id in found.items()
                   if workflow.get(node_id, {}).get("class_type") != "SaveImage")
    if wrong:
        raise TemplateError(f"the template has no SaveImage node at {', '.join(wrong)}")
    return found


def stage_printer(workflow: Workflow, say: Callable[[str], None]) -> Callable[[Progress], None]:
    """A progress callback that names each node as it starts (its title) and each sampler step."""
    def title(node_id: str | None) -> str:
        node = workflow.get(node_id or "", {})
        return str(node.get("_meta", {}).get("title") or node.get("class_type") or node_id)

    def on_progress(event: Progress) -> None:
        if event["type"] == "executing" and event["node"]:
            say(f"running node {event['node']}: {title(event['node'])}")
        elif event["type"] == "progress" and event["max"]:
            say(f"  {title(event['node'])}: step {event['value']}/{event['max']}")

    return on_progress


class Runner(Protocol):
    """What run_template needs of a server: cli.local_comfy.LocalComfy (or the tests' ComfyServer)."""

    def run(self, api_prompt: dict[str, Any], timeout: float = ..., progress: Any = ...,
            on_message: Any = ...) -> dict[str, Any]: ...

    def view(self, filename: str, subfolder: str = ..., type: str = ...) -> bytes: ...  # noqa: A002


@dataclass
class TemplateRun:
    history: dict[str, Any]
    images: dict[str, Path]  # stage -> downloaded file
    seconds: float


def run_template(server: Runner, workflow: Workflow, dest: Path, *,
                 progress: Callable[[Progress], None] | None = None, on_message: MessageCallback | None = None,
                 timeout: float = 300) -> TemplateRun:
    """Queue a prepared template, follow it, and download each stage's image into dest as <stage>.png."""
    import time

    stages = stage_nodes(workflow)
    started = time.monotonic()
    history = server.run(workflow, timeout=timeout, progress=progress, on_message=on_message)
    seconds = time.monotonic() - started
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    images: dict[str, Path] = {}
    for stage, node_id in stages.items():
        listed = history.get("outputs", {}).get(node_id, {}).get("images", [])
        if not listed:
            raise TemplateError(f"SaveImage node {node_id} ({stage}) produced no image")
        image = listed[0]
        data = server.view(image["filename"], image.get("subfolder", ""), image.get("type", "output"))
        target = dest / f"{stage}.png"
        target.write_bytes(data)
        images[stage] = target
    return TemplateRun(history, images, seconds)
