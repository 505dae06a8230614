"""A client for a running ComfyUI server: its HTTP routes (requests) and its websocket (websocket-client).

    client = ComfyClient("http://127.0.0.1:8188")
    name = client.upload_image(sketch_path)              # the name LoadImage takes
    entry = client.run(api_prompt, progress=print)       # submit + follow /ws, returns the /history entry
    files = client.download_outputs(entry, out_dir)      # only inside out_dir, under checked names

Failures come back as ComfyClientError subclasses whose message names the node: PromptRejected (HTTP 400
node_errors), ExecutionFailed (execution_error), Interrupted, RunTimeout, ServerUnavailable.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict
from urllib.parse import urlsplit, urlunsplit

import requests
import websocket

# How often /history is asked while the websocket is quiet: a missed final message costs at most this.
HISTORY_POLL_S = 5.0
POLL_S = 0.25
OUTPUT_KINDS = ("images", "gifs", "videos", "audio")
OUTPUT_TYPES = ("output", "temp", "input")
UPLOAD_SUBFOLDER = "m4"  # upload_input's folder inside the server's input folder


class ComfyClientError(RuntimeError):
    """Anything that went wrong talking to the server or running a prompt on it."""


class PromptRejected(ComfyClientError, ValueError):
    """POST /prompt answered 400: the workflow is invalid. node_errors maps node id -> errors."""

    def __init__(self, message: str, error: dict[str, Any] | None = None,
                 node_errors: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.error = error or {}
        self.node_errors = node_errors or {}


class ExecutionFailed(ComfyClientError):
    """A node raised while the prompt ran (websocket execution_error or a history status of error)."""

    def __init__(self, message: str, node_id: str | None = None, node_type: str | None = None) -> None:
        super().__init__(message)
        self.node_id = node_id
        self.node_type = node_type


class ServerUnavailable(ComfyClientError):
    """The server did not answer (refused, reset, or timed out on a plain request)."""


class RunTimeout(ComfyClientError):
    """The prompt did not finish within the run's time limit."""


class Interrupted(ExecutionFailed):
    """The prompt was interrupted (on the server, or by Ctrl-C here) before it finished."""


class UnsafeFilename(ComfyClientError, ValueError):
    """A server-given file name or folder that cannot be written locally as it is."""


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
    base = str(name).replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if ch.isprintable()).replace("..", "_").strip()
    if not base or base in {".", "_"}:
        raise UnsafeFilename(f"the server gave an unusable file name: {name!r}")
    return base


def _safe_subfolder(subfolder: str) -> str:
    """The server's output subfolder, only ever sent back to /view; traversal means a crafted entry."""
    sub = str(subfolder)
    parts = sub.replace("\\", "/").split("/")
    if sub.startswith(("/", "\\")) or ".." in parts or any(not ch.isprintable() for ch in sub) or ":" in sub:
        raise UnsafeFilename(f"the server gave an unsafe subfolder: {subfolder!r}")
    return sub


def describe_node_errors(node_errors: dict[str, Any], prompt: dict[str, Any]) -> str:
    """'node 4 (CheckpointLoaderSimple): Value not in list (ckpt_name: ...)' for every rejected input."""
    parts = []
    for node_id, info in sorted(node_errors.items()):
        info = info if isinstance(info, dict) else {}
        class_type = info.get("class_type") or prompt.get(node_id, {}).get("class_type", "?")
        errors = info.get("errors") or [{"message": "error"}]
        for err in errors:
            detail = f" ({err['details']})" if err.get("details") else ""
            parts.append(f"node {node_id} ({class_type}): {err.get('message', 'error')}{detail}")
    return "; ".join(parts)


def _execution_error(data: dict[str, Any]) -> ExecutionFailed:
    node_id = data.get("node_id")
    node_id = None if node_id is None else str(node_id)
    return ExecutionFailed(
        f"node {node_id} ({data.get('node_type')}) failed: {data.get('exception_type', 'error')}: "
        f"{str(data.get('exception_message', '')).strip()}", node_id, data.get("node_type"))


def _interrupted(data: dict[str, Any]) -> Interrupted:
    node_id = data.get("node_id")
    return Interrupted(f"the prompt was interrupted at node {node_id} ({data.get('node_type')})",
                       None if node_id is None else str(node_id), data.get("node_type"))


def _close_quietly(ws: Any) -> None:
    if ws is not None:
        try:
            ws.close(timeout=0.2)
        except (OSError, websocket.WebSocketException):
            pass  # already gone: nothing to close


@dataclass
class _Socket:
    """The websocket one prompt is followed on (under client_id); kept = reused from an earlier prompt."""

    ws: Any
    kept: bool
    client_id: str


class ComfyClient:
    """One server, one client id (the websocket sees only the prompts this client submitted)."""

    def __init__(self, url: str, *, timeout: float = 30.0, client_id: str | None = None,
                 alive_check: Callable[[], None] | None = None) -> None:
        parts = urlsplit(url.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"url: expected http(s)://host:port, got {url!r}")
        if not timeout > 0:
            raise ValueError(f"timeout: must be > 0 seconds, got {timeout!r}")
        self.url = urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))
        self.ws_url = urlunsplit(("wss" if parts.scheme == "https" else "ws", parts.netloc,
                                  parts.path.rstrip("/") + "/ws", "", ""))
        self.timeout = float(timeout)
        self.client_id = client_id or uuid.uuid4().hex
        # A launcher that owns the server process passes a check that raises when it died.
        self.alive_check = alive_check
        self._http = requests.Session()
        # requests re-reads proxies, CA bundle and netrc from the environment on every call (a walk over
        # os.environ per request, ~2 ms a run here); read them once for this server, then stop the lookup.
        env = self._http.merge_environment_settings(self.url, {}, None, None, None)
        self._http.proxies.update(env["proxies"])
        self._http.verify = env["verify"]
        self._http.auth = requests.utils.get_netrc_auth(self.url)
        self._http.trust_env = False
        self._prompts: dict[str, dict[str, Any]] = {}  # prompt_id -> submitted graph, for class_type in progress
        # The websocket is kept between prompts (a connect is ~2 ms of a run's overhead here); one thread
        # uses it at a time, another thread running a prompt meanwhile opens its own.
        self._ws: Any = None
        self._ws_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ComfyClient({self.url!r})"

    def close(self) -> None:
        with self._ws_lock:
            _close_quietly(self._ws)
            self._ws = None
        self._http.close()

    def __enter__(self) -> ComfyClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- plain HTTP ----

    def _request(self, method: str, route: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", self.timeout)
        try:
            return self._http.request(method, self.url + route, **kwargs)
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise ServerUnavailable(f"ComfyUI at {self.url} did not answer {method} {route}: {exc}") from exc

    def _json(self, method: str, route: str, **kwargs: Any) -> Any:
        resp = self._request(method, route, **kwargs)
        if resp.status_code >= 400:
            raise ComfyClientError(f"{method} {route} answered HTTP {resp.status_code}: {resp.text[:300]}")
        try:
            return resp.json()
        except ValueError as exc:
            raise ComfyClientError(f"{method} {route} did not answer JSON: {resp.text[:200]!r}") from exc

    def get_json(self, route: str) -> Any:
        return self._json("GET", route)

    def object_info(self) -> dict[str, Any]:
        return self._json("GET", "/object_info")

    def queue_remaining(self) -> int:
        """Prompts running plus pending on the server (GET /queue)."""
        data = self._json("GET", "/queue")
        return len(data.get("queue_running") or []) + len(data.get("queue_pending") or [])

    def history(self, prompt_id: str) -> dict[str, Any] | None:
        data = self._json("GET", f"/history/{prompt_id}")
        return data.get(prompt_id) if isinstance(data, dict) else None

    def upload_image(self, path: Path | str, *, subfolder: str = "", overwrite: bool = True) -> str:
        """Upload a local image into the server's input folder; returns the name LoadImage takes."""
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"image: {path} is not a file")
        return self._post_image(path.name, path.read_bytes(), subfolder=subfolder, overwrite=overwrite)

    def _post_image(self, name: str, payload: bytes, *, subfolder: str, overwrite: bool) -> str:
        data = {"overwrite": "true" if overwrite else "false", "type": "input", "subfolder": subfolder}
        info = self._json("POST", "/upload/image", files={"image": (name, payload)}, data=data,
                          timeout=max(self.timeout, 60.0))
        return f"{info['subfolder']}/{info['name']}" if info.get("subfolder") else str(info["name"])

    def input_exists(self, name: str, subfolder: str = "") -> bool:
        """Whether the server's input folder holds subfolder/name (HEAD /view: no file is sent)."""
        resp = self._request("HEAD", "/view", params={"filename": name, "subfolder": subfolder, "type": "input"})
        if resp.status_code in (200, 404):
            return resp.status_code == 200
        raise ComfyClientError(f"HEAD /view {subfolder}/{name} (input) answered HTTP {resp.status_code}")

    def upload_input(self, path: Path | str, *, subfolder: str = UPLOAD_SUBFOLDER) -> str:
        """Upload a local image under a name made from its content, unless the server already has it;
        returns the name LoadImage takes ('m4/<stem>-<16 hex digits of its SHA-256><suffix>').

        The same bytes always get the same name, so a batch sends a shared reference to each server
        once (later runs find it with a HEAD), and a file of the user's that happens to have the same
        name in the input folder is never overwritten.
        """
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"image: {path} is not a file")
        payload = path.read_bytes()
        stem = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in path.stem)[:60] or "image"
        name = f"{stem}-{hashlib.sha256(payload).hexdigest()[:16]}{path.suffix.lower()}"
        if self.input_exists(name, subfolder):
            return f"{subfolder}/{name}" if subfolder else name
        return self._post_image(name, payload, subfolder=subfolder, overwrite=True)  # same name = same bytes

    def view(self, filename: str, subfolder: str = "", type: str = "output") -> bytes:  # noqa: A002  (the API's name)
        resp = self._request("GET", "/view", params={"filename": filename, "subfolder": subfolder, "type": type},
                             timeout=max(self.timeout, 60.0))
        if resp.status_code >= 400:
            raise ComfyClientError(f"GET /view {subfolder}/{filename} ({type}) answered HTTP {resp.status_code}")
        return resp.content

    def interrupt(self, prompt_id: str | None = None) -> None:
        """Stop the running prompt: only prompt_id when given (the server skips it if another one runs)."""
        body = {"prompt_id": prompt_id} if prompt_id else {}
        resp = self._request("POST", "/interrupt", json=body)
        if resp.status_code >= 400:
            raise ComfyClientError(f"POST /interrupt answered HTTP {resp.status_code}")

    def cancel(self, prompt_id: str) -> None:
        """Take prompt_id off the queue if it waits there, and interrupt it if it runs."""
        self._request("POST", "/queue", json={"delete": [prompt_id]})
        self.interrupt(prompt_id)

    # ---- prompts ----

    def submit(self, prompt: dict[str, Any], *, client_id: str | None = None) -> str:
        """POST the API-format prompt; returns its prompt_id or raises PromptRejected naming the nodes.

        client_id: whose websocket the server reports the prompt's progress to (default: this client's).
        """
        if self.alive_check is not None:
            self.alive_check()
        body = {"prompt": prompt, "client_id": client_id or self.client_id}
        resp = self._request("POST", "/prompt", json=body)
        if resp.status_code == 400:
            try:
                data = resp.json()
            except ValueError:
                data = {"error": {"message": resp.text}}
            error = data.get("error") or {}
            error = error if isinstance(error, dict) else {"message": str(error)}
            node_errors = data.get("node_errors") or {}
            message = str(error.get("message", "invalid prompt"))
            if error.get("details"):
                message += f" ({error['details']})"
            nodes = describe_node_errors(node_errors, prompt)
            raise PromptRejected(f"ComfyUI rejected the prompt: {message}" + (f" — {nodes}" if nodes else ""),
                                 error, node_errors)
        if resp.status_code >= 400:
            raise ComfyClientError(f"POST /prompt answered HTTP {resp.status_code}: {resp.text[:300]}")
        prompt_id = str(resp.json()["prompt_id"])
        self._prompts[prompt_id] = prompt
        return prompt_id

    def _connect_ws(self, client_id: str | None = None) -> Any:
        try:
            # Frames are decoded and parsed as JSON anyway; the library's own UTF-8 check is pure Python
            # (a per-byte loop: ~5 ms for the ~21 KB of messages of a run).
            return websocket.create_connection(f"{self.ws_url}?clientId={client_id or self.client_id}",
                                               timeout=min(self.timeout, 10.0), skip_utf8_validation=True)
        except (OSError, websocket.WebSocketException):
            return None  # /history polling does the job without progress reports

    def run(self, prompt: dict[str, Any], *, timeout: float = 600, progress: ProgressCallback | None = None,
            on_message: MessageCallback | None = None) -> dict[str, Any]:
        """Submit and follow to the end; returns the /history entry (prompt, outputs, status)."""
        with self._socket() as sock:  # connected before submitting, so no early message is missed
            prompt_id = self.submit(prompt, client_id=sock.client_id)
            return self._wait(prompt_id, sock, timeout=timeout, progress=progress, on_message=on_message,
                              just_submitted=True)

    def wait(self, prompt_id: str, *, timeout: float = 600, progress: ProgressCallback | None = None,
             on_message: MessageCallback | None = None) -> dict[str, Any]:
        """Follow a submitted prompt to its end; returns its /history entry.

        Raises ExecutionFailed / Interrupted naming the node, RunTimeout after timeout seconds (the prompt
        is then cancelled on the server), and on Ctrl-C cancels the prompt before re-raising.
        """
        with self._socket() as sock:
            return self._wait(prompt_id, sock, timeout=timeout, progress=progress, on_message=on_message,
                              just_submitted=False)

    @contextmanager
    def _socket(self) -> Iterator[_Socket]:
        if not self._ws_lock.acquire(blocking=False):
            # Another thread follows a prompt on the kept socket. The server keeps one socket per client
            # id (a second connection under the same id would take the first one's messages), so this
            # prompt gets an id and a socket of its own.
            client_id = uuid.uuid4().hex
            own = _Socket(self._connect_ws(client_id), kept=False, client_id=client_id)
            try:
                yield own
            finally:
                _close_quietly(own.ws)
            return
        try:
            kept = self._ws is not None and bool(getattr(self._ws, "connected", False))
            if not kept:
                _close_quietly(self._ws)
                self._ws = self._connect_ws()
            sock = _Socket(self._ws, kept=kept, client_id=self.client_id)
            ended_cleanly = False
            try:
                yield sock
                ended_cleanly = True
            finally:
                self._ws = sock.ws
                if not ended_cleanly:  # an error or Ctrl-C may leave half a frame unread: start afresh
                    _close_quietly(self._ws)
                    self._ws = None
        finally:
            self._ws_lock.release()

    def _wait(self, prompt_id: str, sock: _Socket, *, timeout: float, progress: ProgressCallback | None,
              on_message: MessageCallback | None, just_submitted: bool) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        try:
            # A resumed wait may find the prompt done already; one just submitted is followed at once.
            entry = None if just_submitted else self._finished(prompt_id)
            if entry is None and sock.ws is not None:
                entry = self._follow_ws(sock.ws, prompt_id, deadline, progress, on_message)
                if entry is None and sock.kept:
                    # The kept socket had gone stale between prompts (a restarted server, an idle timeout
                    # on the way): connect again, and ask /history for what the old one missed.
                    sock.ws, sock.kept = self._connect_ws(sock.client_id), False
                    entry = self._finished(prompt_id)
                    if entry is None and sock.ws is not None:
                        entry = self._follow_ws(sock.ws, prompt_id, deadline, progress, on_message)
            while entry is None:
                if time.monotonic() > deadline:
                    raise RunTimeout(f"prompt {prompt_id} did not finish within {timeout:g} s on {self.url}")
                time.sleep(POLL_S)
                entry = self._finished(prompt_id)
            return entry
        except RunTimeout:
            self._cancel_quietly(prompt_id)
            raise
        except KeyboardInterrupt:
            self._cancel_quietly(prompt_id)
            raise
        finally:
            self._prompts.pop(prompt_id, None)  # its graph named the nodes in progress reports: not needed now

    def _cancel_quietly(self, prompt_id: str) -> None:
        try:
            self.cancel(prompt_id)
        except ComfyClientError:
            pass  # the server is gone or busy: the caller's error says more than this one

    def _finished(self, prompt_id: str) -> dict[str, Any] | None:
        """The history entry once the prompt completed; raises for an error ending; None while it runs."""
        if self.alive_check is not None:
            self.alive_check()
        entry = self.history(prompt_id)
        if entry is None:
            return None
        # The server writes history only when the prompt ended, so an entry is final.
        status = entry.get("status") or {}
        if status.get("status_str") == "error" or status.get("completed") is False:
            for name, data in status.get("messages", []):
                if name == "execution_error":
                    raise _execution_error(data)
                if name == "execution_interrupted":
                    raise _interrupted(data)
            raise ExecutionFailed(f"prompt {prompt_id} ended with an error (status {status})")
        return entry

    def _progress(self, prompt_id: str, kind: str, node: Any, value: Any = 0, maximum: Any = 0) -> Progress:
        node_id = None if node is None else str(node)
        graph = self._prompts.get(prompt_id, {})
        class_type = graph.get(node_id, {}).get("class_type") if node_id else None
        return Progress(type=kind, node=node_id, class_type=class_type, value=int(value), max=int(maximum))

    def _follow_ws(self, ws: Any, prompt_id: str, deadline: float, progress: ProgressCallback | None,
                   on_message: MessageCallback | None) -> dict[str, Any] | None:
        """Read the socket until the prompt ends (then its history entry) or the socket drops (None)."""
        ws.settimeout(1.0)
        next_poll = time.monotonic() + HISTORY_POLL_S
        while True:
            now = time.monotonic()
            if now > deadline:
                raise RunTimeout(f"prompt {prompt_id} did not finish in time on {self.url}")
            if now > next_poll:  # a missed final message must not hang the run
                next_poll = now + HISTORY_POLL_S
                entry = self._finished(prompt_id)
                if entry is not None:
                    return entry
            try:
                raw = ws.recv()
            except websocket.WebSocketTimeoutException:
                continue
            except UnicodeDecodeError:
                continue  # a text frame that is not UTF-8 (validation is skipped above): not a message of ours
            except (OSError, websocket.WebSocketException):
                _close_quietly(ws)
                return None  # connection lost: /history polling takes over
            if not isinstance(raw, str):
                continue  # binary frames are latent previews
            try:
                msg = json.loads(raw)
            except ValueError:
                continue
            kind, data = str(msg.get("type")), msg.get("data") or {}
            if not isinstance(data, dict) or data.get("prompt_id") not in (None, prompt_id):
                continue
            if on_message is not None:
                on_message(kind, data)
            if kind == "execution_error":
                raise _execution_error(data)
            if kind == "execution_interrupted":
                raise _interrupted(data)
            if kind in ("execution_success",) or (
                    kind == "executing" and data.get("node") is None and data.get("prompt_id") == prompt_id):
                return self._history_after_end(prompt_id, deadline)
            if progress is None:
                continue
            if kind == "executing":
                progress(self._progress(prompt_id, "executing", data.get("node")))
            elif kind == "execution_cached":
                for node in data.get("nodes") or []:
                    progress(self._progress(prompt_id, "cached", node))
            elif kind == "progress":
                progress(self._progress(prompt_id, "progress", data.get("node"), data.get("value", 0),
                                        data.get("max", 0)))

    def _history_after_end(self, prompt_id: str, deadline: float) -> dict[str, Any]:
        # The end message can arrive a moment before /history has the entry: ask again soon, then back off
        # (a flat 0.25 s wait cost a quarter second on about every other run).
        pause = 0.01
        while True:
            entry = self._finished(prompt_id)
            if entry is not None:
                return entry
            if time.monotonic() > deadline:
                raise RunTimeout(f"prompt {prompt_id} ended but /history has no entry for it on {self.url}")
            time.sleep(pause)
            pause = min(pause * 2, POLL_S)

    # ---- outputs ----

    def download_outputs(self, entry: dict[str, Any], dest: Path, *,
                         node_ids: Iterable[str] | None = None) -> list[Path]:
        """Save the files a history entry lists into dest (only there); see download_by_node."""
        return [path for paths in self.download_by_node(entry, dest, node_ids=node_ids).values() for path in paths]

    def download_by_node(self, entry: dict[str, Any], dest: Path, *,
                         node_ids: Iterable[str] | None = None) -> dict[str, list[Path]]:
        """Save the files a history entry lists into dest (only there), under their checked names;
        returns {output node id: its saved files} in the entry's order.

        A name or subfolder with folders, '..', control characters or a drive is refused
        (UnsafeFilename, a ComfyClientError) before anything is fetched or written: the server
        never gives such names, so one means the entry was crafted or corrupted.
        """
        dest = Path(dest)
        dest.mkdir(parents=True, exist_ok=True)
        root = dest.resolve()
        wanted = None if node_ids is None else {str(n) for n in node_ids}
        outputs = entry.get("outputs") or {}
        if wanted is not None and wanted - set(outputs):
            raise ComfyClientError(f"the history entry has no outputs for node(s) {sorted(wanted - set(outputs))}")
        plan: list[tuple[str, str, str, str, Path]] = []
        taken: set[str] = set()
        for node_id, output in outputs.items():
            if wanted is not None and str(node_id) not in wanted:
                continue
            for kind in OUTPUT_KINDS:
                for item in (output or {}).get(kind) or []:
                    if not isinstance(item, dict) or "filename" not in item:
                        continue
                    name = str(item["filename"])
                    try:
                        if safe_filename(name) != name:
                            raise UnsafeFilename(f"refusing the server file name {name!r}")
                        subfolder = _safe_subfolder(item.get("subfolder", ""))
                    except UnsafeFilename as exc:
                        raise UnsafeFilename(f"node {node_id}: {exc}") from None
                    kind_type = str(item.get("type", "output"))
                    if kind_type not in OUTPUT_TYPES:
                        raise UnsafeFilename(f"node {node_id}: unknown output type {kind_type!r}")
                    local = name
                    stem, dot, ext = name.rpartition(".")
                    n = 2
                    while local in taken:  # same name from two subfolders: keep both
                        local = f"{stem}-{n}.{ext}" if dot else f"{name}-{n}"
                        n += 1
                    taken.add(local)
                    target = (root / local).resolve()
                    if target.parent != root:
                        raise UnsafeFilename(f"node {node_id}: {name!r} would be written outside {root}")
                    plan.append((str(node_id), name, subfolder, kind_type, target))
        by_node: dict[str, list[Path]] = {}
        for node_id, name, subfolder, kind_type, target in plan:
            target.write_bytes(self.view(name, subfolder, kind_type))
            by_node.setdefault(node_id, []).append(target)
        return by_node
