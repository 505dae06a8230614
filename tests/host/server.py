"""Tier 3 host: one real ComfyUI server per test session, with this pack and the stand-in checkpoint + ControlNet.

The server runs cli.local_comfy.LocalComfy (the same launcher the demo uses) from the venv's python,
with this repository linked as custom_nodes/m4_director and the third-party stand-ins (if present)
as custom_nodes/m4_test_standins.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from cli.local_comfy import DEFAULT_USER_SETTINGS, ComfyError, LocalComfy
from cli.standin_checkpoint import StandinError, cached_checkpoint

from . import frontend

REPO = Path(__file__).resolve().parents[2]
STANDINS = Path(__file__).resolve().parent / "standins"
STANDINS_FOLDER = "m4_test_standins"


class ServerStartFailed(RuntimeError):
    """The stand-in checkpoint or the server could not be made ready; the message has the log tail."""


class ComfyServer:
    """What the server and browser tiers see of the running server."""

    def __init__(self, local: LocalComfy, timings: dict[str, float]) -> None:
        self._local = local
        self.timings = timings
        self.frontend = frontend.PINNED  # the frontend version it serves, and whether Nodes 2.0 is on
        self.nodes2 = False

    @property
    def url(self) -> str:
        return self._local.url

    @property
    def checkpoint(self) -> str:
        assert self._local.checkpoint is not None
        return self._local.checkpoint

    @property
    def base_dir(self) -> Path:
        return self._local.base_dir

    @property
    def controlnet(self) -> str:
        """File name of the random-weight stand-in ControlNet in the server's models/controlnet/."""
        assert self._local.controlnet is not None
        return self._local.controlnet

    def run(self, api_prompt: dict[str, Any], timeout: float = 180, progress: Any = None,
            on_message: Any = None) -> dict[str, Any]:
        return self._local.run(api_prompt, timeout=timeout, progress=progress, on_message=on_message)

    def queue(self, api_prompt: dict[str, Any]) -> str:
        return self._local.queue(api_prompt)

    def object_info(self) -> dict[str, Any]:
        return self._local.object_info()

    def upload_image(self, path: Path | str) -> str:
        return self._local.upload_image(path)

    def view(self, filename: str, subfolder: str = "", type: str = "output") -> bytes:  # noqa: A002
        return self._local.view(filename, subfolder, type)

    def download_images(self, entry: dict[str, Any], dest: Path) -> list[Path]:
        return self._local.download_images(entry, dest)

    def get_json(self, route: str) -> Any:
        return self._local.get_json(route)

    def log_tail(self, lines: int = 60) -> str:
        return self._local.log_tail(lines)

    def stop(self) -> None:
        self._local.stop()


def nodes2() -> bool:
    """M4_NODES2=1: the browser tier runs the frontend's new node renderer ("Nodes 2.0")."""
    return os.environ.get("M4_NODES2", "") == "1"


def start_server(base_dir: Path) -> ComfyServer:
    """Build (or reuse) the checkpoint and start the server in base_dir; raises ServerStartFailed."""
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    try:
        checkpoint = cached_checkpoint()
    except StandinError as exc:
        raise ServerStartFailed(str(exc)) from exc
    timings["checkpoint_s"] = time.perf_counter() - t0
    extra = {STANDINS_FOLDER: STANDINS} if (STANDINS / "__init__.py").is_file() else {}
    # The frontend under test (M4_FRONTEND, tests/host/frontend.py) and its renderer (M4_NODES2=1: the
    # new Vue node renderer, "Nodes 2.0", through its user setting; otherwise the classic canvas).
    try:
        version = frontend.selected()
        args = frontend.server_args(version)
    except frontend.FrontendUnavailable as exc:
        raise ServerStartFailed(str(exc)) from exc
    settings = {**DEFAULT_USER_SETTINGS, **({"Comfy.VueNodes.Enabled": True} if nodes2() else {})}
    # One torch thread: the test process and chromium share the 2 cores with the server (see LocalComfy).
    local = LocalComfy(base_dir, checkpoint=checkpoint, extra_custom_nodes=extra, threads=1, extra_args=args,
                       user_settings=settings)
    t1 = time.perf_counter()
    try:
        local.start()
    except ComfyError as exc:
        raise ServerStartFailed(str(exc)) from exc
    timings["server_start_s"] = time.perf_counter() - t1
    srv = ComfyServer(local, timings)
    srv.frontend = version
    srv.nodes2 = nodes2()
    return srv


# How ComfyUI names this pack's module when the test server loads it from custom_nodes/m4_director.
PACK_MODULE = "custom_nodes.m4_director"


def pack_node_ids(object_info: dict) -> list[str]:
    """The node ids /object_info lists as coming from this pack."""
    return sorted(k for k, v in object_info.items() if v.get("python_module") == PACK_MODULE)


def txt2img_prompt(checkpoint: str, width: int = 64, height: int = 64, steps: int = 4, seed: int = 7,
                   prefix: str = "m4_host_txt2img") -> dict[str, Any]:
    """The stock txt2img graph in API format (node ids as in ComfyUI's default workflow)."""
    return {
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": checkpoint}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "clean line art of a fox", "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry, sketchy", "clip": ["4", 1]}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": width, "height": height, "batch_size": 1}},
        "3": {
            "class_type": "KSampler",
            "inputs": {
                "seed": seed, "steps": steps, "cfg": 6.0, "sampler_name": "euler", "scheduler": "normal",
                "denoise": 1.0, "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0],
                "latent_image": ["5", 0],
            },
        },
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": prefix, "images": ["8", 0]}},
    }
