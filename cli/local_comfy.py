"""A headless ComfyUI server on 127.0.0.1 for the demo and the server/browser tests.

The server gets its own base directory (models/, custom_nodes/, input/, output/, user/) with only this
pack linked in and the stand-in checkpoint (models/checkpoints/) and stand-in ControlNet
(models/controlnet/) beside it, so nothing of a user's own install is loaded.
It is started with the current interpreter (the venv) and stopped by its own PID. This module keeps the
process; the HTTP/websocket protocol is agents.runtime.comfyui_client.ComfyClient (`comfy.client`).

    with LocalComfy() as comfy:
        entry = comfy.run(api_prompt)          # follows /ws until done, returns the /history entry
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests
import websocket  # noqa: F401  (tests patch cli.local_comfy.websocket.create_connection to drop the socket)

from agents.runtime.comfyui_client import (  # noqa: F401  (re-exported: the launcher's callers import them from here)
    ComfyClient,
    ComfyClientError,
    ExecutionFailed,
    Interrupted,
    MessageCallback,
    Progress,
    ProgressCallback,
    PromptRejected,
    RunTimeout,
    ServerUnavailable,
    safe_filename,
)
from cli.standin_checkpoint import StandinError, cached_checkpoint, cached_controlnet, comfy_version, load_comfy_host

REPO = Path(__file__).resolve().parents[1]
PACK_FOLDER = "m4_director"
LOG_NAME = "comfyui.log"
# A fresh profile would open the Templates dialog over the canvas; a finished tutorial skips it.
DEFAULT_USER_SETTINGS: dict[str, Any] = {"Comfy.TutorialCompleted": True}


class ComfyError(ComfyClientError):
    """The local server failed to start or died. Prompt failures raise the client's errors (re-exported here)."""


class ComfyStartError(ComfyError):
    """The server process exited or did not answer in time; the message carries the log tail."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:
    """Linux: SIGTERM the server when the process that started it dies (a killed pytest or demo)."""
    import ctypes
    import signal

    pr_set_pdeathsig = 1
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _log_tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _link_model(source: Path, folder: Path) -> str:
    """Link (or copy) a model file into a models/ folder of the base directory; returns its file name."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / source.name
    if not target.exists():
        try:
            target.symlink_to(source.resolve())
        except OSError:
            shutil.copy2(source, target)
    return source.name


class LocalComfy:
    """Start and stop a headless ComfyUI server; queue prompts, run them, move files in and out."""

    def __init__(
        self,
        base_dir: Path | None = None,
        *,
        checkpoint: Path | None = None,
        with_checkpoint: bool = True,
        controlnet: Path | None = None,
        comfy_tree: Path | None = None,
        port: int | None = None,
        start_timeout: float = 120.0,
        user_settings: dict[str, Any] | None = None,
        extra_args: tuple[str, ...] = (),
        extra_custom_nodes: dict[str, Path] | None = None,
        threads: int | None = None,
        progress: ProgressCallback | None = None,
        python: str | None = None,
    ) -> None:
        self._own_base = base_dir is None
        self.base_dir = Path(base_dir) if base_dir else Path(tempfile.mkdtemp(prefix="m4-comfy-"))
        self._checkpoint_source = checkpoint
        self._controlnet_source = controlnet
        self.with_checkpoint = with_checkpoint
        self.comfy_tree = Path(comfy_tree) if comfy_tree else None
        self.port = port or free_port()
        self.start_timeout = start_timeout
        self.user_settings = DEFAULT_USER_SETTINGS if user_settings is None else user_settings
        self.extra_args = extra_args
        # folder name -> source: more custom-node folders linked beside the pack (the test stand-ins)
        self.extra_custom_nodes = dict(extra_custom_nodes or {})
        self.progress = progress
        # The interpreter the server runs on (another venv, e.g. the clean-install test's); default: this one.
        self.python = python or sys.executable
        # CPU threads for torch in the server. On a busy 2-core machine two spinning OpenMP threads ran a
        # tiny UNet 9x slower than one (1.3 vs 11.9 it/s measured here); None keeps torch's default.
        self.threads = threads
        self.checkpoint: str | None = None
        # File name of the random-weight stand-in ControlNet (linked with the checkpoint), for ControlNetLoader.
        self.controlnet: str | None = None
        self.log_path = self.base_dir / LOG_NAME
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_fh: Any = None
        self._http = requests.Session()
        self.client = ComfyClient(self.url, alive_check=self._check_alive)

    # ---- lifecycle ----

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def version(self) -> str:
        """The ComfyUI version of the tree this server runs from."""
        return comfy_version(self.comfy_tree or load_comfy_host().ensure_comfyui())

    def __enter__(self) -> LocalComfy:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _prepare_base(self) -> None:
        for sub in ("custom_nodes", "models/checkpoints", "input", "output", "temp", "user/default"):
            (self.base_dir / sub).mkdir(parents=True, exist_ok=True)
        for folder, source in {PACK_FOLDER: REPO, **self.extra_custom_nodes}.items():
            link = self.base_dir / "custom_nodes" / safe_filename(folder)
            if not link.exists():
                link.symlink_to(Path(source).resolve(), target_is_directory=True)
        if self.with_checkpoint:
            source = Path(self._checkpoint_source) if self._checkpoint_source else cached_checkpoint(self.comfy_tree)
            self.checkpoint = _link_model(source, self.base_dir / "models" / "checkpoints")
            cn_source = Path(self._controlnet_source) if self._controlnet_source else cached_controlnet(self.comfy_tree)
            self.controlnet = _link_model(cn_source, self.base_dir / "models" / "controlnet")
        settings = self.base_dir / "user" / "default" / "comfy.settings.json"
        if self.user_settings and not settings.exists():
            settings.write_text(json.dumps(self.user_settings, indent=2))

    def start(self) -> None:
        if self._proc is not None:
            return
        try:
            tree = self.comfy_tree or load_comfy_host().ensure_comfyui()
            self.comfy_tree = tree
            self._prepare_base()
        except SystemExit as exc:  # comfy_host reports a bad COMFYUI_PATH or a failed download this way
            raise ComfyStartError(f"no usable ComfyUI tree: {exc}") from exc
        except StandinError as exc:
            raise ComfyStartError(str(exc)) from exc
        cmd = [
            self.python, "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(self.port),
            "--base-directory", str(self.base_dir), "--database-url", "sqlite:///:memory:",
            "--disable-api-nodes", *self.extra_args,
        ]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        if self.threads:
            env.update(OMP_NUM_THREADS=str(self.threads), MKL_NUM_THREADS=str(self.threads))
        self._log_fh = open(self.log_path, "ab")  # noqa: SIM115  (closed in stop())
        self._proc = subprocess.Popen(
            cmd, cwd=str(tree), stdout=self._log_fh, stderr=subprocess.STDOUT, env=env,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while self._proc is not None:
            code = self._proc.poll()
            if code is not None:
                raise ComfyStartError(f"ComfyUI exited with code {code} while starting; log {self.log_path}:\n"
                                      f"{_log_tail(self.log_path)}")
            try:
                if self._http.get(self.url + "/object_info", timeout=10).status_code == 200:
                    return
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise ComfyStartError(f"ComfyUI did not answer on {self.url} within {self.start_timeout:.0f} s; "
                                      f"log {self.log_path}:\n{_log_tail(self.log_path)}")
            time.sleep(0.5)

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=15)
        if self._log_fh is not None:
            self._log_fh.close()
            self._log_fh = None
        self._http.close()
        self.client.close()
        if self._own_base and os.environ.get("M4_KEEP_COMFY_BASE") != "1":
            shutil.rmtree(self.base_dir, ignore_errors=True)

    def log_tail(self, lines: int = 40) -> str:
        return _log_tail(self.log_path, lines)

    def _check_alive(self) -> None:
        if self._proc is None:
            raise ComfyError("the ComfyUI server is not running (call start() or use it as a context manager)")
        code = self._proc.poll()
        if code is not None:
            raise ComfyError(f"the ComfyUI server died (exit {code}); log:\n{self.log_tail()}")

    # ---- HTTP API: agents.runtime.comfyui_client.ComfyClient does the protocol ----

    def object_info(self) -> dict[str, Any]:
        return self.client.object_info()

    def get_json(self, route: str) -> Any:
        return self.client.get_json(route)

    def queue(self, prompt: dict[str, Any], client_id: str | None = None) -> str:
        """POST the API-format prompt; returns its prompt_id or raises PromptRejected naming the nodes."""
        return self.client.submit(prompt, client_id=client_id)

    def run(
        self, api_prompt: dict[str, Any], timeout: float = 180, progress: ProgressCallback | None = None,
        on_message: MessageCallback | None = None,
    ) -> dict[str, Any]:
        """Queue the prompt, follow it to the end and return its /history entry (prompt, outputs, status).

        on_message sees every JSON websocket message sent while it runs (those without a prompt_id too).
        """
        try:
            return self.client.run(api_prompt, timeout=timeout, progress=progress or self.progress,
                                   on_message=on_message)
        except RunTimeout as exc:
            raise RunTimeout(f"{exc}; log:\n{self.log_tail()}") from exc

    def upload_image(self, path: Path | str) -> str:
        """Upload a local image into the server's input folder; returns the name LoadImage takes."""
        return self.client.upload_image(path)

    def view(self, filename: str, subfolder: str = "", type: str = "output") -> bytes:  # noqa: A002  (the API's name)
        return self.client.view(filename, subfolder, type)

    def download_images(self, entry: dict[str, Any], dest: Path) -> list[Path]:
        """Save every output file a history entry lists into dest (names checked, nothing outside dest)."""
        return self.client.download_outputs(entry, dest)


def main(argv: list[str] | None = None) -> int:
    """`python -m cli.local_comfy`: serve ComfyUI with this pack until Ctrl-C (for a look in a browser)."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--port", type=int, default=None, help="port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--base-dir", type=Path, default=None, help="server base directory (default: a temp dir)")
    parser.add_argument("--no-checkpoint", action="store_true", help="do not build/link the stand-in checkpoint")
    args = parser.parse_args(argv)
    started = time.monotonic()
    with LocalComfy(args.base_dir, port=args.port, with_checkpoint=not args.no_checkpoint) as comfy:
        print(f"ComfyUI {comfy.version} ready at {comfy.url} in {time.monotonic() - started:.1f} s "
              f"(base {comfy.base_dir}, log {comfy.log_path}); Ctrl-C stops it", flush=True)
        try:
            while True:
                comfy._check_alive()
                time.sleep(1)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
