"""Tier 1: the ComfyUI client without ComfyUI — file-name safety, and downloads from a real local HTTP peer.

The peer is a standard-library http.server on 127.0.0.1 that answers /view with fixed bytes and records
every request, so a test can prove a refused entry never reached the network or the disk.
"""

from __future__ import annotations

import socket
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from agents.runtime.comfyui_client import (
    ComfyClient,
    ComfyClientError,
    ServerUnavailable,
    UnsafeFilename,
    safe_filename,
)
from cli.local_comfy import free_port
from host.hostile_peer import serving


@pytest.mark.parametrize(("given", "expected"), [
    ("ComfyUI_00001_.png", "ComfyUI_00001_.png"),
    ("../../etc/passwd", "passwd"),
    ("/etc/passwd", "passwd"),
    ("C:\\Windows\\system32\\evil.dll", "evil.dll"),
    ("a\\..\\b.png", "b.png"),
    ("sub/..png", "_png"),
    ("x\x00y.png", "xy.png"),
    ("line\nbreak.png", "linebreak.png"),
])
def test_safe_filename_keeps_only_a_plain_base_name(given: str, expected: str) -> None:
    assert safe_filename(given) == expected


@pytest.mark.parametrize("given", ["", "..", "../", "dir/", "/", " . ", "\x00", "C:\\"])
def test_safe_filename_refuses_names_with_nothing_left(given: str) -> None:
    with pytest.raises(UnsafeFilename, match="unusable file name"):
        safe_filename(given)
    assert issubclass(UnsafeFilename, ValueError) and issubclass(UnsafeFilename, ComfyClientError)


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"  # downloads of images must start like an image file


class _Peer(BaseHTTPRequestHandler):
    requests: list[dict[str, list[str]]] = []

    def do_GET(self) -> None:  # noqa: N802  (http.server's name)
        parts = urlsplit(self.path)
        if parts.path != "/view":
            self.send_error(404)
            return
        query = parse_qs(parts.query, keep_blank_values=True)
        type(self).requests.append(query)
        _reply(self, PNG_SIGNATURE + f"IMG:{query['subfolder'][0]}/{query['filename'][0]}".encode(), "image/png")

    def log_message(self, *args: object) -> None:
        pass


def _reply(handler: BaseHTTPRequestHandler, body: bytes, content_type: str) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


@pytest.fixture()
def peer():
    _Peer.requests = []
    with serving(_Peer) as url:
        yield url


def _entry(*images: dict[str, str]) -> dict:
    return {"outputs": {"9": {"images": list(images)}, "51": {"images": [
        {"filename": "stage1_00001_.png", "subfolder": "M4", "type": "output"}]}}}


def test_download_writes_each_listed_file_into_dest(peer: str, tmp_path: Path) -> None:
    entry = _entry({"filename": "final_00001_.png", "subfolder": "M4", "type": "output"},
                   {"filename": "final_00001_.png", "subfolder": "other", "type": "temp"})
    with ComfyClient(peer) as client:
        files = client.download_outputs(entry, tmp_path / "dest")
        only = client.download_outputs(entry, tmp_path / "only", node_ids=["51"])
    names = sorted(p.name for p in files)
    assert names == ["final_00001_-2.png", "final_00001_.png", "stage1_00001_.png"]  # no silent overwrite
    assert all(p.parent == tmp_path / "dest" for p in files)
    assert (tmp_path / "dest" / "final_00001_.png").read_bytes() == PNG_SIGNATURE + b"IMG:M4/final_00001_.png"
    assert (tmp_path / "dest" / "final_00001_-2.png").read_bytes() == PNG_SIGNATURE + b"IMG:other/final_00001_.png"
    assert [p.name for p in only] == ["stage1_00001_.png"]
    assert {q["type"][0] for q in _Peer.requests} == {"output", "temp"}


def test_download_by_node_groups_files_and_keeps_same_names_from_two_nodes(peer: str, tmp_path: Path) -> None:
    entry = {"outputs": {"9": {"images": [{"filename": "a.png", "subfolder": "M4", "type": "output"}]},
                         "51": {"images": [{"filename": "a.png", "subfolder": "M4b", "type": "output"},
                                           {"filename": "b.png", "subfolder": "M4b", "type": "output"}]}}}
    with ComfyClient(peer) as client:
        by_node = client.download_by_node(entry, tmp_path)
    assert {k: [p.name for p in v] for k, v in by_node.items()} == {"9": ["a.png"], "51": ["a-2.png", "b.png"]}
    # the second node's file did not overwrite the first
    assert by_node["51"][0].read_bytes() == PNG_SIGNATURE + b"IMG:M4b/a.png"
    assert by_node["9"][0].read_bytes() == PNG_SIGNATURE + b"IMG:M4/a.png"


@pytest.mark.parametrize("image", [
    {"filename": "../../etc/passwd"},
    {"filename": "/abs/evil.png"},
    {"filename": "..\\..\\evil.png"},
    {"filename": "ev\x00il.png"},
    {"filename": ".."},
    {"filename": "ok.png", "subfolder": "../.."},
    {"filename": "ok.png", "subfolder": "/etc"},
    {"filename": "ok.png", "subfolder": "C:\\Windows"},
    {"filename": "ok.png", "type": "../../output"},
])
def test_download_refuses_traversal_before_any_request_or_write(peer: str, tmp_path: Path, image: dict) -> None:
    bad = {"subfolder": "", "type": "output", **image}
    dest = tmp_path / "x" / "dest"
    with ComfyClient(peer) as client, pytest.raises(UnsafeFilename, match="node 9"):
        client.download_outputs(_entry({"filename": "fine.png", "subfolder": "", "type": "output"}, bad), dest)
    assert _Peer.requests == []  # refused as a whole: not even the good file was fetched
    assert list(dest.iterdir()) == []
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == []


def test_download_refuses_a_symlinked_escape(peer: str, tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    outside = tmp_path / "outside.png"
    (dest / "link.png").symlink_to(outside)
    with ComfyClient(peer) as client, pytest.raises(UnsafeFilename, match="outside"):
        client.download_outputs(_entry({"filename": "link.png", "subfolder": "", "type": "output"}), dest,
                                node_ids=["9"])
    assert not outside.exists()


def test_unknown_output_node_is_named(peer: str, tmp_path: Path) -> None:
    with ComfyClient(peer) as client, pytest.raises(ComfyClientError, match="'77'"):
        client.download_outputs(_entry(), tmp_path, node_ids=["77"])


def test_a_closed_port_is_server_unavailable() -> None:
    port = free_port()
    with ComfyClient(f"http://127.0.0.1:{port}", timeout=2) as client:
        with pytest.raises(ServerUnavailable, match=str(port)):
            client.queue_remaining()


@pytest.mark.parametrize("url", ["127.0.0.1:8188", "ftp://host", "http://", ""])
def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError, match="url"):
        ComfyClient(url)


def test_url_and_websocket_address() -> None:
    client = ComfyClient("http://127.0.0.1:8188/")
    assert client.url == "http://127.0.0.1:8188" and client.ws_url == "ws://127.0.0.1:8188/ws"
    assert ComfyClient("https://h/comfy").ws_url == "wss://h/comfy/ws"


# --- environment settings read once, websocket frames ------------------------------------------

class _Proxy(BaseHTTPRequestHandler):
    """A forward proxy's view of a plain-HTTP request: the absolute URL and Host it was asked for."""

    seen: list[tuple[str, str]] = []

    def do_GET(self) -> None:  # noqa: N802  (http.server's name)
        type(self).seen.append((self.path, self.headers.get("Host", "")))
        _reply(self, b'{"queue_running": [], "queue_pending": [["x"]]}', "application/json")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def proxy():
    _Proxy.seen = []
    with serving(_Proxy) as url:
        yield url


def test_a_proxy_from_the_environment_is_still_used(proxy: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # The client reads the proxy settings once at construction (not per request): they must still apply.
    for name in ("NO_PROXY", "no_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", proxy)
    monkeypatch.setenv("http_proxy", proxy)
    with ComfyClient("http://comfy.invalid:8188", timeout=5) as client:
        assert client.queue_remaining() == 1
        assert client.queue_remaining() == 1
    assert _Proxy.seen == [("http://comfy.invalid:8188/queue", "comfy.invalid:8188")] * 2


def test_no_proxy_from_the_environment_is_still_honoured(proxy: str, monkeypatch: pytest.MonkeyPatch) -> None:
    dead = f"http://127.0.0.1:{free_port()}"  # a proxy address nothing listens on: using it would fail
    for name in ("HTTP_PROXY", "http_proxy"):
        monkeypatch.setenv(name, dead)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(name, "127.0.0.1")
    with ComfyClient(proxy, timeout=5) as client:  # the fake proxy answers /queue itself when asked directly
        assert client.queue_remaining() == 1
    assert _Proxy.seen == [("/queue", proxy.removeprefix("http://"))]


def _server_frame(payload: bytes) -> bytes:
    """One unmasked FIN text frame, as a server sends it (RFC 6455 5.2), payload under 64 KiB."""
    assert len(payload) < 1 << 16
    if len(payload) < 126:
        return bytes([0x81, len(payload)]) + payload
    return bytes([0x81, 126]) + len(payload).to_bytes(2, "big") + payload


def test_a_text_frame_that_is_not_utf8_is_skipped_not_fatal() -> None:
    import websocket

    from agents.runtime.comfyui_client import ExecutionFailed

    ours, theirs = socket.socketpair()
    ws = websocket.WebSocket(skip_utf8_validation=True)  # as ComfyClient._connect_ws opens it
    ws.sock, ws.connected = ours, True
    try:
        theirs.sendall(_server_frame(b'{"type": "status", "data": {"x": "\xff\xfe"}}'))
        theirs.sendall(_server_frame(b'{"type": "execution_error", "data": {"prompt_id": "p1", "node_id": "55", '
                                     b'"node_type": "KSampler", "exception_type": "E", "exception_message": "m"}}'))
        client = ComfyClient("http://127.0.0.1:9")
        with pytest.raises(ExecutionFailed, match="node 55 \\(KSampler\\)"):
            client._follow_ws(ws, "p1", deadline=time.monotonic() + 10, progress=None, on_message=None)
    finally:
        ours.close()
        theirs.close()
