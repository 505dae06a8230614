"""The files a /history entry lists, made safe to fetch and write locally: checked names, one folder,
bounded size, content that is what it claims to be, nothing half-written left behind."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..measure.image_header import image_limits, sniff_format
from .comfy_errors import BadDownload, ComfyClientError, UnsafeFilename

OUTPUT_KINDS = ("images", "gifs", "videos", "audio")
OUTPUT_TYPES = ("output", "temp", "input")
CHUNK_BYTES = 1 << 16
# What a server may call the bytes of an image output (it sends image/png, image/webp, ...).
IMAGE_CONTENT_PREFIX = "image/"
OTHER_CONTENT_PREFIXES = ("image/", "video/", "audio/", "application/octet-stream")


def safe_filename(name: str) -> str:
    """A server-given file name made safe to write locally: no folders, no '..', no control characters,
    not hidden (a name starting with '.' such as .bashrc is refused like traversal)."""
    base = str(name).replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if ch.isprintable()).replace("..", "_").strip()
    if not base or base in {".", "_"}:
        raise UnsafeFilename(f"the server gave an unusable file name: {name!r}")
    if base.startswith("."):
        raise UnsafeFilename(f"the server gave a hidden file name: {name!r}")
    return base


def safe_subfolder(subfolder: str) -> str:
    """The server's output subfolder, only ever sent back to /view; traversal means a crafted entry."""
    sub = str(subfolder)
    parts = sub.replace("\\", "/").split("/")
    if (sub.startswith(("/", "\\")) or any(p.startswith(".") for p in parts)
            or any(not ch.isprintable() for ch in sub) or ":" in sub):
        raise UnsafeFilename(f"the server gave an unsafe subfolder: {subfolder!r}")
    return sub


@dataclass(frozen=True)
class Planned:
    """One file to fetch: which node listed it, its server name, subfolder and type, where it goes."""

    node_id: str
    kind: str
    name: str
    subfolder: str
    type: str
    target: Path


def _checked_item(node_id: str, item: dict[str, Any]) -> tuple[str, str, str]:
    name = str(item["filename"])
    try:
        if safe_filename(name) != name:
            raise UnsafeFilename(f"refusing the server file name {name!r}")
        subfolder = safe_subfolder(item.get("subfolder", ""))
    except UnsafeFilename as exc:
        raise UnsafeFilename(f"node {node_id}: {exc}") from None
    kind_type = str(item.get("type", "output"))
    if kind_type not in OUTPUT_TYPES:
        raise UnsafeFilename(f"node {node_id}: unknown output type {kind_type!r}")
    return name, subfolder, kind_type


def plan_downloads(entry: dict[str, Any], root: Path, node_ids: Iterable[str] | None) -> list[Planned]:
    """Every file the entry lists (for node_ids, or all), checked before anything is fetched or written;
    the same name from two subfolders gets a -2 suffix instead of overwriting."""
    outputs = entry.get("outputs") or {}
    if not isinstance(outputs, dict):
        raise ComfyClientError(f"the history entry's outputs are a {type(outputs).__name__}, not an object")
    wanted = None if node_ids is None else {str(n) for n in node_ids}
    if wanted is not None and wanted - {str(k) for k in outputs}:
        raise ComfyClientError(f"the history entry has no outputs for node(s) {sorted(wanted - set(outputs))}")
    plan: list[Planned] = []
    taken: set[str] = set()
    for node_id, output in outputs.items():
        if wanted is not None and str(node_id) not in wanted:
            continue
        for kind in OUTPUT_KINDS:
            items = output.get(kind) if isinstance(output, dict) else None
            for item in items if isinstance(items, list) else []:
                if not isinstance(item, dict) or "filename" not in item:
                    continue
                name, subfolder, kind_type = _checked_item(str(node_id), item)
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
                plan.append(Planned(str(node_id), kind, name, subfolder, kind_type, target))
    return plan


def max_download_bytes() -> int:
    """The cap on one downloaded file: the image loaders' own file limit (image_limits.toml)."""
    return image_limits().max_file_bytes


def check_content(planned: Planned, content_type: str, first: bytes) -> None:
    """The content type and, for images, the file signature match what the entry says it is."""
    what = f"node {planned.node_id}: {planned.name}"
    ctype = content_type.split(";", 1)[0].strip().lower()
    allowed = (IMAGE_CONTENT_PREFIX,) if planned.kind == "images" else OTHER_CONTENT_PREFIXES
    if ctype and not ctype.startswith(allowed):
        raise BadDownload(f"{what}: the server sent {ctype!r}, not an image")
    if planned.kind == "images" and sniff_format(first) is None:
        raise BadDownload(f"{what}: the server's bytes are not an image (they start {first[:16]!r})")


def write_stream(planned: Planned, content_type: str, chunks: Iterator[bytes], cap: int) -> Path:
    """Stream chunks into a temporary file beside the target, checking the content and the cap on the
    way, then rename it into place; on any error the partial file is removed and the target untouched."""
    root = planned.target.parent
    fd, tmp_name = tempfile.mkstemp(prefix=".m4-download-", dir=root)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            size, checked = 0, False
            head = b""
            for chunk in chunks:
                size += len(chunk)
                if size > cap:
                    raise BadDownload(f"node {planned.node_id}: {planned.name} is over the download limit of "
                                      f"{cap} bytes (M4_MAX_IMAGE_BYTES raises it)")
                if not checked:
                    head += chunk
                    if len(head) >= 16:
                        check_content(planned, content_type, head)
                        checked = True
                fh.write(chunk)
            if not checked:
                check_content(planned, content_type, head)
        os.replace(tmp, planned.target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return planned.target
