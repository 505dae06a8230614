"""A headless ComfyUI server on 127.0.0.1 for the demo and the server/browser tests.

The server gets its own base directory (models/, custom_nodes/, input/, output/, user/) with only this
pack linked in and the stand-in checkpoint (models/checkpoints/) and stand-in ControlNet
(models/controlnet/) beside it, so nothing of a user's own install is loaded.
It is started with the current interpreter (the venv) and stopped by its own PID.

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
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypedDict

import requests
import websocket

from cli.standin_checkpoint import StandinError, cached_checkpoint, cached_controlnet, comfy_version, load_comfy_host

REPO = Path(__file__).resolve().parents[1]
PACK_FOLDER = "m4_director"
LOG_NAME = "comfyui.log"
# A fresh profile would open the Templates dialog over the canvas; a finished tutorial skips it.
DEFAULT_USER_SETTINGS: dict[str, Any] = {"Comfy.TutorialCompleted": True}


class ComfyError(RuntimeError):
    """The local server failed to start, died, or a prompt failed on it."""


class ComfyStartError(ComfyError):
    """The server process exited or did not answer in time; the message carries the log tail."""


class PromptRejected(ComfyError, ValueError):
    """POST /prompt answered 400: the workflow is invalid. node_errors maps node id -> errors."""

    def __init__(self, message: str, error: dict[str, Any], node_errors: dict[str, Any]) -> None:
        super().__init__(message)
        self.error = error
        self.node_errors = node_errors


class ExecutionFailed(ComfyError):
    """A node raised while the prompt ran (websocket execution_error or a history status of error)."""

    def __init__(self, message: str, node_id: str | None, node_type: str | None) -> None:
        super().__init__(message)
        self.node_id = node_id
        self.node_type = node_type


class Progress(TypedDict):
    """One progress report, shaped like the websocket message it comes from.

    type: 'executing' when a node starts, 'progress' for a sampler step (value of max), 'cached' for a
    node whose result was reused.
    """

    type: str
    node: str | None
    class_type: str | None
    value: int
    max: int


ProgressCallback = Callable[[Progress], None]
# (message type, data) for every JSON websocket message of a prompt, custom events included (m4.guidance).
MessageCallback = Callable[[str, dict[str, Any]], None]


def safe_filename(name: str) -> str:
    """A server-given file name made safe to write locally: no folders, no '..', no control characters."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if ch.isprintable()).replace("..", "_").strip()
    if not base or base in {".", "_"}:
        raise ValueError(f"the server gave an unusable file name: {name!r}")
    return base


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


def _describe_node_errors(node_errors: dict[str, Any], prompt: dict[str, Any]) -> str:
    parts = []
    for node_id, info in sorted(node_errors.items()):
        class_type = info.get("class_type") or prompt.get(node_id, {}).get("class_type", "?")
        for err in info.get("errors", []):
            detail = f" ({err['details']})" if err.get("details") else ""
            parts.append(f"node {node_id} ({class_type}): {err.get('message', 'error')}{detail}")
    return "; ".join(parts)


def _progress(kind: str, node: Any, prompt: dict[str, Any], value: Any = 0, maximum: Any = 0) -> Progress:
    node_id = None if node is None else str(node)
    class_type = prompt.get(node_id, {}).get("class_type") if node_id else None
    return Progress(type=kind, node=node_id, class_type=class_type, value=int(value), max=int(maximum))


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
            sys.executable, "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(self.port),
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

    # ---- HTTP API ----

    def object_info(self) -> dict[str, Any]:
        resp = self._http.get(self.url + "/object_info", timeout=30)
        resp.raise_for_status()
        return resp.json()

    def get_json(self, route: str) -> Any:
        resp = self._http.get(self.url + route, timeout=30)
        resp.raise_for_status()
        return resp.json()

    def queue(self, prompt: dict[str, Any], client_id: str | None = None) -> str:
        """POST the API-format prompt; returns its prompt_id or raises PromptRejected naming the nodes."""
        self._check_alive()
        body: dict[str, Any] = {"prompt": prompt}
        if client_id:
            body["client_id"] = client_id
        resp = self._http.post(self.url + "/prompt", json=body, timeout=30)
        if resp.status_code == 400:
            try:
                data = resp.json()
            except ValueError:
                data = {"error": {"message": resp.text}}
            error = data.get("error") or {}
            node_errors = data.get("node_errors") or {}
            nodes = _describe_node_errors(node_errors, prompt)
            message = error.get("message", "invalid prompt") if isinstance(error, dict) else str(error)
            if isinstance(error, dict) and error.get("details"):
                message += f" ({error['details']})"
            raise PromptRejected(f"ComfyUI rejected the prompt: {message}" + (f" — {nodes}" if nodes else ""),
                                 error if isinstance(error, dict) else {"message": str(error)}, node_errors)
        resp.raise_for_status()
        return str(resp.json()["prompt_id"])

    def history(self, prompt_id: str) -> dict[str, Any] | None:
        data = self.get_json(f"/history/{prompt_id}")
        return data.get(prompt_id)

    def run(
        self, api_prompt: dict[str, Any], timeout: float = 180, progress: ProgressCallback | None = None,
        on_message: MessageCallback | None = None,
    ) -> dict[str, Any]:
        """Queue the prompt, follow it to the end and return its /history entry (prompt, outputs, status).

        on_message sees every JSON websocket message sent while it runs (those without a prompt_id too).
        """
        callback = progress or self.progress
        client_id = uuid.uuid4().hex
        deadline = time.monotonic() + timeout
        ws = None
        try:
            ws = websocket.create_connection(f"ws://127.0.0.1:{self.port}/ws?clientId={client_id}", timeout=5)
        except (OSError, websocket.WebSocketException):
            ws = None  # fall back to polling /history
        try:
            prompt_id = self.queue(api_prompt, client_id)
            if ws is not None:
                self._follow_ws(ws, prompt_id, api_prompt, deadline, callback, on_message)
        finally:
            if ws is not None:
                ws.close()
        return self._await_history(prompt_id, deadline)

    def _follow_ws(self, ws: Any, prompt_id: str, prompt: dict[str, Any], deadline: float,
                   callback: ProgressCallback | None, on_message: MessageCallback | None = None) -> None:
        ws.settimeout(1.0)
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                raw = ws.recv()
            except websocket.WebSocketTimeoutException:
                continue
            except (OSError, websocket.WebSocketException):
                return  # connection lost: /history polling takes over
            if not isinstance(raw, str):
                continue  # binary frames are latent previews
            msg = json.loads(raw)
            kind, data = msg.get("type"), msg.get("data") or {}
            if data.get("prompt_id") not in (None, prompt_id):
                continue
            if on_message is not None:
                on_message(str(kind), data)
            if kind == "execution_error":
                node_id = data.get("node_id")
                raise ExecutionFailed(
                    f"node {node_id} ({data.get('node_type')}) failed: {data.get('exception_type', 'error')}: "
                    f"{str(data.get('exception_message', '')).strip()}", node_id, data.get("node_type"))
            if kind == "execution_interrupted":
                raise ExecutionFailed(f"the prompt was interrupted at node {data.get('node_id')}",
                                      data.get("node_id"), data.get("node_type"))
            if kind == "executing" and data.get("node") is None and data.get("prompt_id") == prompt_id:
                return
            if callback is None:
                continue
            if kind == "executing":
                callback(_progress("executing", data.get("node"), prompt))
            elif kind == "execution_cached":
                for node in data.get("nodes") or []:
                    callback(_progress("cached", node, prompt))
            elif kind == "progress":
                callback(_progress("progress", data.get("node"), prompt, data.get("value", 0), data.get("max", 0)))
        raise ComfyError(f"prompt {prompt_id} did not finish in time; log:\n{self.log_tail()}")

    def _await_history(self, prompt_id: str, deadline: float) -> dict[str, Any]:
        while True:
            self._check_alive()
            entry = self.history(prompt_id)
            if entry is not None and entry.get("status", {}).get("completed") is not None:
                status = entry["status"]
                if status.get("status_str") == "error":
                    raise ExecutionFailed(self._history_error(prompt_id, status), *self._history_error_node(status))
                return entry
            if time.monotonic() > deadline:
                raise ComfyError(f"prompt {prompt_id} did not finish in time; log:\n{self.log_tail()}")
            time.sleep(0.2)

    @staticmethod
    def _history_error_node(status: dict[str, Any]) -> tuple[str | None, str | None]:
        for name, data in status.get("messages", []):
            if name == "execution_error":
                return data.get("node_id"), data.get("node_type")
        return None, None

    @staticmethod
    def _history_error(prompt_id: str, status: dict[str, Any]) -> str:
        for name, data in status.get("messages", []):
            if name == "execution_error":
                return (f"node {data.get('node_id')} ({data.get('node_type')}) failed: "
                        f"{data.get('exception_type', 'error')}: {str(data.get('exception_message', '')).strip()}")
        return f"prompt {prompt_id} ended with an error"

    def upload_image(self, path: Path | str) -> str:
        """Upload a local image into the server's input folder; returns the name LoadImage takes."""
        path = Path(path)
        with open(path, "rb") as fh:
            resp = self._http.post(self.url + "/upload/image", files={"image": (path.name, fh)},
                                   data={"overwrite": "true", "type": "input"}, timeout=60)
        resp.raise_for_status()
        info = resp.json()
        return f"{info['subfolder']}/{info['name']}" if info.get("subfolder") else str(info["name"])

    def view(self, filename: str, subfolder: str = "", type: str = "output") -> bytes:  # noqa: A002  (the API's name)
        resp = self._http.get(self.url + "/view", params={"filename": filename, "subfolder": subfolder, "type": type},
                              timeout=60)
        resp.raise_for_status()
        return resp.content

    def download_images(self, entry: dict[str, Any], dest: Path) -> list[Path]:
        """Save every image a history entry lists into dest, under sanitised names."""
        dest = Path(dest)
        dest.mkdir(parents=True, exist_ok=True)
        saved = []
        for output in entry.get("outputs", {}).values():
            for image in output.get("images", []):
                data = self.view(image["filename"], image.get("subfolder", ""), image.get("type", "output"))
                target = dest / safe_filename(image["filename"])
                target.write_bytes(data)
                saved.append(target)
        return saved


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
