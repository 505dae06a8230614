"""A ComfyUI server's plain HTTP routes: /object_info, /queue, /history, uploads, /view and downloads.

ComfyClient (agents/runtime/comfyui_client.py) adds prompts: submitting and following them on /ws.
Every answer's shape is checked: a server giving a string where an object belongs gets a named
ComfyClientError, not an AttributeError.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests

from .comfy_errors import BadDownload, ComfyClientError, ServerUnavailable
from .comfy_outputs import CHUNK_BYTES, Planned, max_download_bytes, plan_downloads, write_stream

UPLOAD_SUBFOLDER = "m4"  # upload_input's folder inside the server's input folder


def json_object(data: Any, what: str) -> dict[str, Any]:
    """A server answer that must be a JSON object; anything else is a named ComfyClientError."""
    if not isinstance(data, dict):
        raise ComfyClientError(f"{what} answered a {type(data).__name__} where an object was expected: "
                               f"{str(data)[:120]!r}")
    return data


class ComfyHTTP:
    """One server's HTTP routes, over one requests session."""

    def __init__(self, url: str, *, timeout: float = 30.0) -> None:
        parts = urlsplit(str(url).strip())
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"url: expected http(s)://host:port, got {url!r}")
        if not timeout > 0:
            raise ValueError(f"timeout: must be > 0 seconds, got {timeout!r}")
        self.url = urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))
        self.timeout = float(timeout)
        self._http = requests.Session()
        # requests re-reads proxies, CA bundle and netrc from the environment on every call (a walk over
        # os.environ per request, ~2 ms a run here); read them once for this server, then stop the lookup.
        env = self._http.merge_environment_settings(self.url, {}, None, None, None)
        self._http.proxies.update(env["proxies"])
        self._http.verify = env["verify"]
        self._http.auth = requests.utils.get_netrc_auth(self.url)
        self._http.trust_env = False

    def close(self) -> None:
        self._http.close()

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
        """GET /object_info: node type -> its description (each an object, or a named error)."""
        info = json_object(self._json("GET", "/object_info"), "GET /object_info")
        for node, spec in info.items():
            json_object(spec, f"GET /object_info node {node!r}")
            inputs = spec.get("input", {})
            json_object(inputs, f"GET /object_info node {node!r} input")
            for section in ("required", "optional"):
                if inputs.get(section) is not None:
                    json_object(inputs[section], f"GET /object_info node {node!r} input.{section}")
        return info

    def queue_remaining(self) -> int:
        """Prompts running plus pending on the server (GET /queue)."""
        data = json_object(self._json("GET", "/queue"), "GET /queue")
        running, pending = data.get("queue_running") or [], data.get("queue_pending") or []
        if not isinstance(running, list) or not isinstance(pending, list):
            raise ComfyClientError(f"GET /queue answered queues that are not lists: {str(data)[:120]!r}")
        return len(running) + len(pending)

    def history(self, prompt_id: str) -> dict[str, Any] | None:
        data = self._json("GET", f"/history/{prompt_id}")
        entry = data.get(prompt_id) if isinstance(data, dict) else None
        return None if entry is None else json_object(entry, f"GET /history/{prompt_id} entry")

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
        """GET /view's bytes, at most max_download_bytes() of them (BadDownload beyond)."""
        cap = max_download_bytes()
        with self._view_stream(filename, subfolder, type) as resp:
            body = bytearray()
            for chunk in resp.iter_content(CHUNK_BYTES):
                body += chunk
                if len(body) > cap:
                    raise BadDownload(f"GET /view {subfolder}/{filename}: over the download limit of {cap} bytes")
        return bytes(body)

    @contextmanager
    def _view_stream(self, filename: str, subfolder: str, kind_type: str) -> Iterator[requests.Response]:
        resp = self._request("GET", "/view", params={"filename": filename, "subfolder": subfolder, "type": kind_type},
                             timeout=max(self.timeout, 60.0), stream=True)
        try:
            if resp.status_code >= 400:
                raise ComfyClientError(f"GET /view {subfolder}/{filename} ({kind_type}) answered HTTP "
                                       f"{resp.status_code}")
            yield resp
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
            raise ServerUnavailable(f"ComfyUI at {self.url} broke off sending {subfolder}/{filename}: {exc}") from exc
        finally:
            resp.close()

    def fetch_to(self, planned: Planned) -> Path:
        """Stream one listed file to planned.target (a temporary file renamed into place), checked on the
        way: size cap, content type, image signature; errors name the node and file."""
        with self._view_stream(planned.name, planned.subfolder, planned.type) as resp:
            return write_stream(planned, resp.headers.get("Content-Type", ""), resp.iter_content(CHUNK_BYTES),
                                max_download_bytes())

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
        by_node: dict[str, list[Path]] = {}
        for planned in plan_downloads(entry, dest.resolve(), node_ids):
            by_node.setdefault(planned.node_id, []).append(self.fetch_to(planned))
        return by_node
