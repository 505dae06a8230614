"""Writing run-log rows to a CSV or JSON file without destroying anything: the run log itself is
refused, an existing file or a symlink only when forced (a symlink is replaced, never followed), the
folder must exist, and the rows go to a temporary file renamed into place."""

from __future__ import annotations

import csv
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any


class ExportError(ValueError):
    """An export target that would destroy data or cannot be written; the message names it."""


def write_rows(fh: Any, rows: list[dict[str, Any]], fmt: str, columns: list[str], json_fields: tuple[str, ...]) -> None:
    """JSON: the rows as a list; CSV: one column per field, JSON fields as JSON text in their cells."""
    if fmt == "json":
        fh.write(json.dumps(rows, indent=2, sort_keys=True, default=str))
        return
    writer = csv.DictWriter(fh, fieldnames=columns)
    writer.writeheader()
    for row in rows:
        writer.writerow({k: json.dumps(v, sort_keys=True) if k in json_fields and v is not None else v
                         for k, v in row.items()})


def export_target(path: Path, log_path: Path, *, force: bool) -> Path:
    """Where an export may go, or RunLogError naming what it would destroy."""
    where = f"--export {path}"
    log_files = {Path(str(log_path) + suffix).resolve() for suffix in ("", "-wal", "-shm", "-journal")}
    if path.resolve() in log_files or (path.exists() and log_path.exists() and path.samefile(log_path)):
        raise ExportError(f"{where}: that is the run log itself; exporting onto it would destroy it")
    if path.is_symlink():
        if not force:
            raise ExportError(f"{where}: is a symlink; refusing to follow it (--force replaces the link itself)")
    elif path.is_dir():
        raise ExportError(f"{where}: is a folder; give a file name inside it")
    elif path.exists() and not force:
        raise ExportError(f"{where}: the file exists; add --force to replace it")
    if not path.parent.is_dir():
        raise ExportError(f"{where}: the folder {path.parent} does not exist")
    return path


def write_atomically(target: Path, write: Callable[[Any], None]) -> None:
    """write(fh) into a temporary file beside target, then rename it over target; on any error the
    temporary file is removed and target is untouched (OSError becomes a one-line RunLogError)."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ExportError(f"--export {target}: could not be written ({exc.strerror or exc})") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
