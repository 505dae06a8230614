"""What can go wrong talking to a ComfyUI server, as exceptions whose messages name the node and input,
and the progress/message callback types of ComfyClient."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypedDict


class ComfyClientError(RuntimeError):
    """Anything that went wrong talking to the server or running a prompt on it."""


class PromptRejected(ComfyClientError, ValueError):
    """POST /prompt refused the workflow (HTTP 400), or accepted it with node_errors (some outputs invalid).
    node_errors maps node id -> errors."""

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


class BadDownload(ComfyClientError):
    """A file the server sent is not what its entry says (too big, not an image, cut short)."""


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


def _details(err: Any) -> str:
    if not isinstance(err, dict):
        return str(err)
    raw_extra = err.get("extra_info")
    extra: dict[str, Any] = raw_extra if isinstance(raw_extra, dict) else {}
    where = f" [input {extra['input_name']}]" if extra.get("input_name") else ""
    detail = f" ({err['details']})" if err.get("details") else ""
    return f"{err.get('message', 'error')}{detail}{where}"


def describe_node_errors(node_errors: Any, prompt: dict[str, Any]) -> str:
    """'node 4 (CheckpointLoaderSimple): Value not in list (ckpt_name: ...) [input ckpt_name]' for every
    rejected input; tolerant of any shape the server gives."""
    if not isinstance(node_errors, dict):
        return f"node_errors: {str(node_errors)[:200]}"
    parts = []
    for node_id, info in sorted(node_errors.items(), key=lambda kv: str(kv[0])):
        info = info if isinstance(info, dict) else {"errors": [info]}
        raw_node = prompt.get(str(node_id))
        graph_node: dict[str, Any] = raw_node if isinstance(raw_node, dict) else {}
        class_type = info.get("class_type") or graph_node.get("class_type", "?")
        raw_errors = info.get("errors")
        errors: list[Any] = raw_errors if isinstance(raw_errors, list) and raw_errors else [{"message": "error"}]
        for err in errors:
            parts.append(f"node {node_id} ({class_type}): {_details(err)}")
    return "; ".join(parts)


def execution_error(data: dict[str, Any]) -> ExecutionFailed:
    node_id = data.get("node_id")
    node_id = None if node_id is None else str(node_id)
    return ExecutionFailed(
        f"node {node_id} ({data.get('node_type')}) failed: {data.get('exception_type', 'error')}: "
        f"{str(data.get('exception_message', '')).strip()}", node_id, data.get("node_type"))


def interrupted(data: dict[str, Any]) -> Interrupted:
    node_id = data.get("node_id")
    return Interrupted(f"the prompt was interrupted at node {node_id} ({data.get('node_type')})",
                       None if node_id is None else str(node_id), data.get("node_type"))
