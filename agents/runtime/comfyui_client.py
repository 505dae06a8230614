"""A client for a running ComfyUI server: its HTTP routes (requests) and its websocket (websocket-client).

    client = ComfyClient("http://127.0.0.1:8188")
    name = client.upload_image(sketch_path)              # the name LoadImage takes
    entry = client.run(api_prompt, progress=print)       # submit + follow /ws, returns the /history entry
    files = client.download_outputs(entry, out_dir)      # only inside out_dir, under checked names

Failures come back as ComfyClientError subclasses whose message names the node: PromptRejected (HTTP 400,
or any node_errors in an accepted prompt), ExecutionFailed (execution_error), Interrupted, RunTimeout,
ServerUnavailable, UnsafeFilename and BadDownload (agents/runtime/comfy_errors.py). Downloads stream to a
temporary file under a size cap (agents/runtime/comfy_outputs.py).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import websocket

from .comfy_errors import (  # noqa: F401  (re-exported: callers import the errors and types from here)
    BadDownload,
    ComfyClientError,
    ExecutionFailed,
    Interrupted,
    MessageCallback,
    Progress,
    ProgressCallback,
    PromptRejected,
    RunTimeout,
    ServerUnavailable,
    UnsafeFilename,
    describe_node_errors,
    execution_error,
    interrupted,
)
from .comfy_http import UPLOAD_SUBFOLDER, ComfyHTTP, json_object  # noqa: F401  (re-exported)
from .comfy_outputs import (  # noqa: F401  (re-exported)
    CHUNK_BYTES,
    OUTPUT_KINDS,
    OUTPUT_TYPES,
    Planned,
    max_download_bytes,
    plan_downloads,
    safe_filename,
    write_stream,
)

# How often /history is asked while the websocket is quiet: a missed final message costs at most this.
HISTORY_POLL_S = 5.0
POLL_S = 0.25


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


class ComfyClient(ComfyHTTP):
    """One server, one client id (the websocket sees only the prompts this client submitted)."""

    def __init__(self, url: str, *, timeout: float = 30.0, client_id: str | None = None,
                 alive_check: Callable[[], None] | None = None) -> None:
        super().__init__(url, timeout=timeout)
        parts = urlsplit(self.url)
        self.ws_url = urlunsplit(("wss" if parts.scheme == "https" else "ws", parts.netloc, parts.path + "/ws", "", ""))
        self.client_id = client_id or uuid.uuid4().hex
        # A launcher that owns the server process passes a check that raises when it died.
        self.alive_check = alive_check
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
        super().close()

    def __enter__(self) -> ComfyClient:
        return self

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
        try:
            data = json_object(resp.json(), "POST /prompt")
        except ValueError:
            raise ComfyClientError(f"POST /prompt did not answer JSON: {resp.text[:200]!r}") from None
        if not isinstance(data.get("prompt_id"), str | int) or isinstance(data.get("prompt_id"), bool):
            raise ComfyClientError(f"POST /prompt answered without a prompt_id: {str(data)[:200]!r}")
        prompt_id = str(data["prompt_id"])
        if data.get("node_errors"):
            # Accepted with some outputs invalid: the server runs the rest. That is not the graph we sent.
            self._cancel_quietly(prompt_id)
            nodes = describe_node_errors(data["node_errors"], prompt)
            raise PromptRejected(f"ComfyUI accepted the prompt only in part (cancelled it): {nodes}", {},
                                 data["node_errors"] if isinstance(data["node_errors"], dict) else {})
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
        if not isinstance(status, dict):
            raise ComfyClientError(f"GET /history/{prompt_id}: the status is a {type(status).__name__}, not an object")
        if status.get("status_str") == "error" or status.get("completed") is False:
            raw_messages = status.get("messages")
            messages: list[Any] = raw_messages if isinstance(raw_messages, list) else []
            for message in messages:
                if not (isinstance(message, list | tuple) and len(message) == 2 and isinstance(message[1], dict)):
                    continue
                name, data = message
                if name == "execution_error":
                    raise execution_error(data)
                if name == "execution_interrupted":
                    raise interrupted(data)
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
            if not isinstance(msg, dict):
                continue
            kind, data = str(msg.get("type")), msg.get("data") or {}
            if not isinstance(data, dict) or data.get("prompt_id") not in (None, prompt_id):
                continue
            if on_message is not None:
                on_message(kind, data)
            if kind == "execution_error":
                raise execution_error(data)
            if kind == "execution_interrupted":
                raise interrupted(data)
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
