"""A scriptable stand-in for a hostile or broken ComfyUI server: a standard-library HTTP server on
127.0.0.1 whose answers per route a test sets (status, content type, body, or a body cut short), and
which records every request it got."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass
class Answer:
    """What one route answers: body bytes (repeated `repeat` times), or a declared length larger than sent."""

    body: bytes = b"{}"
    content_type: str = "application/json"
    status: int = 200
    repeat: int = 1
    declared_extra: int = 0  # Content-Length says this many bytes more than are sent (a cut-short body)


def json_answer(data: Any, status: int = 200) -> Answer:
    return Answer(json.dumps(data).encode(), "application/json", status)


@dataclass
class Script:
    routes: dict[str, Answer] = field(default_factory=dict)
    seen: list[tuple[str, str]] = field(default_factory=list)  # (method, path with query)

    def answer(self, method: str, path: str) -> Answer:
        route = urlsplit(path).path
        for key in (f"{method} {route}", route):
            if key in self.routes:
                return self.routes[key]
        for key, value in self.routes.items():  # prefix routes: "/history/" answers every prompt id
            if key.endswith("/") and route.startswith(key):
                return value
        return Answer(b"not here", "text/plain", 404)


def _handler(script: Script) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            script.seen.append((method, self.path))
            ans = script.answer(method, self.path)
            self.send_response(ans.status)
            self.send_header("Content-Type", ans.content_type)
            self.send_header("Content-Length", str(len(ans.body) * ans.repeat + ans.declared_extra))
            self.end_headers()
            if method == "HEAD":
                return
            try:
                for _ in range(ans.repeat):
                    self.wfile.write(ans.body)
            except (BrokenPipeError, ConnectionResetError):
                return  # the client stopped reading: what a size cap does
            if ans.declared_extra:
                self.close_connection = True

        def do_GET(self) -> None:  # noqa: N802  (http.server's names)
            self._serve("GET")

        def do_POST(self) -> None:  # noqa: N802
            self._serve("POST")

        def do_HEAD(self) -> None:  # noqa: N802
            self._serve("HEAD")

        def log_message(self, *args: object) -> None:
            pass

    return Handler


@contextmanager
def serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """A real HTTP server on 127.0.0.1 answering with `handler`; yields its URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def hostile_server(script: Script) -> Iterator[str]:
    """Serve `script` on 127.0.0.1; yields the URL."""
    with serving(_handler(script)) as url:
        yield url
