"""`./m4 runs`: query the SQLite run log: list runs, filter by status or batch, export them as CSV or JSON."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

# Here, not in run_cmd: `./m4 runs` only reads the log and need not import the HTTP client at start-up.
DEFAULT_LOG = Path(os.environ.get("M4_RUN_LOG") or Path("m4-output") / "m4_runs.sqlite3")

STATUSES = ("done", "failed", "incomplete", "running")
COLUMNS = ("id", "status", "stage", "attempt", "accepted", "batch_id", "server", "sketch", "reference", "error")


def _cell(row: dict[str, Any], key: str) -> str:
    value = row.get(key)
    if value is None:
        return "-"
    if key in ("sketch", "reference", "sketch_path", "reference_path"):
        return Path(str(value)).name
    text = str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _value(row: dict[str, Any], key: str) -> Any:
    """A column by its short name (the log may call the paths sketch_path / reference_path)."""
    if key in row:
        return row[key]
    return row.get(f"{key}_path", row.get(f"{key}_id"))


def table(rows: list[dict[str, Any]]) -> str:
    cells = [[_cell({k: _value(r, k) for k in COLUMNS}, k) for k in COLUMNS] for r in rows]
    widths = [max([len(k)] + [len(c[i]) for c in cells]) for i, k in enumerate(COLUMNS)]
    lines = ["  ".join(k.ljust(w) for k, w in zip(COLUMNS, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(cell, widths, strict=True)) for cell in cells]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="./m4 runs", description=__doc__.splitlines()[0])
    parser.add_argument("--log", default=str(DEFAULT_LOG),
                        help=f"SQLite run log (default: $M4_RUN_LOG or ./{DEFAULT_LOG})")
    parser.add_argument("--status", choices=STATUSES, help="only runs with this status")
    parser.add_argument("--batch", help="only runs of this batch id")
    parser.add_argument("--limit", type=int, help="at most this many runs (oldest first)")
    parser.add_argument("--export", help="write the selected runs to this file instead of listing them")
    parser.add_argument("--format", choices=("csv", "json"), help="export format (default: the file's suffix)")
    parser.add_argument("--force", action="store_true", help="--export may replace an existing file (never the log)")
    args = parser.parse_args(argv)
    log_path = Path(args.log).expanduser()
    if log_path.is_dir():
        print(f"error: --log: {log_path.resolve()} is a folder, not a run log file", file=sys.stderr)
        return 2
    if not log_path.is_file():
        print(f"error: --log: no run log at {log_path.resolve()} (./m4 run or ./m4 batch creates it)", file=sys.stderr)
        return 2
    if args.limit is not None and args.limit < 1:
        parser.error("--limit must be at least 1")
    from agents.runtime.run_log import RunLog, RunLogError, check_log_file
    from cli.inputs import error_line

    try:
        check_log_file(log_path)
        return _query(RunLog(log_path), args)
    except RunLogError as exc:
        print(error_line(exc), file=sys.stderr)
        return 2


def _query(opened: Any, args: argparse.Namespace) -> int:
    filters = {"status": args.status, "batch_id": args.batch, "limit": args.limit}
    with opened as log:
        if args.export:
            target = Path(args.export)
            fmt = args.format or target.suffix.lower().lstrip(".")
            if fmt not in ("csv", "json"):
                print(f"error: --export: cannot tell the format of {target.name}; add --format csv|json",
                      file=sys.stderr)
                return 2
            count = log.export(target, fmt, force=args.force, **filters)
            print(f"[m4 runs] {count} run(s) written to {target.resolve()} ({fmt})")
            return 0
        rows = log.runs(**filters)
    if not rows:
        print("[m4 runs] no runs match")
        return 0
    print(table(rows))
    counts: dict[str, int] = {}
    for r in rows:
        counts[str(r.get("status"))] = counts.get(str(r.get("status")), 0) + 1
    print(f"\n[m4 runs] {len(rows)} run(s): " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
    return 0
