"""The run log: one SQLite row per run (per attempt) with its inputs, plan, prompts, workflow and outcome.

Every write commits at once (WAL journal), so a run that crashes halfway leaves its row with the
stage it reached. The schema is versioned: `schema_version` holds the number of MIGRATIONS applied,
and opening an older file applies the rest in order.

    with RunLog(RunLog.default_path(comfy_user_dir)) as log:
        run_id = log.start_run(sketch=s, reference=r, server=url)
        log.set_stage(run_id, "running")
        log.record(run_id, plan=plan.to_dict(), metrics=scores)
        log.finish(run_id, status="done")
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .run_log_export import ExportError, export_target, write_atomically, write_rows

STATUSES = ("running", "done", "failed", "incomplete")
FINISH_STATUSES = ("done", "failed", "incomplete")
JSON_FIELDS = ("plan", "diagnostics", "prompts", "workflow", "timings", "metrics", "verdict", "images")
TEXT_FIELDS = ("tags", "out_dir", "label")
ENV_PATH = "M4_RUN_LOG"
FILE_NAME = "m4_runs.sqlite3"
SQLITE_MAGIC = b"SQLite format 3\x00"  # the first 16 bytes of every SQLite database file
RATINGS = ("good", "bad")


class RunLogError(ValueError):
    """A bad argument to the run log (unknown field, unknown run, bad status or format), or a file that
    is not a readable run log."""


def unreadable(path: Path, exc: BaseException) -> str:
    return f"the run log {path} cannot be read ({exc}): not a run log, or cut short or corrupt"


def _v1(db: sqlite3.Connection) -> None:
    db.execute("""
        CREATE TABLE runs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            batch_id TEXT,
            attempt INTEGER NOT NULL DEFAULT 1,
            parent_run INTEGER REFERENCES runs(id),
            server TEXT NOT NULL,
            sketch_path TEXT NOT NULL,
            sketch_sha256 TEXT NOT NULL,
            reference_path TEXT,
            reference_sha256 TEXT,
            pair_key TEXT NOT NULL,
            stage TEXT NOT NULL,
            status TEXT NOT NULL,
            error TEXT,
            plan TEXT, diagnostics TEXT, prompts TEXT, workflow TEXT, timings TEXT, metrics TEXT,
            verdict TEXT,
            passed INTEGER
        )""")


def _v2(db: sqlite3.Connection) -> None:
    # v2: where the outputs went (images per stage, out_dir), the attempt's label and the user's tags,
    # and indexes for the batch/resume queries.
    for column in ("images TEXT", "out_dir TEXT", "label TEXT", "tags TEXT"):
        db.execute(f"ALTER TABLE runs ADD COLUMN {column}")
    db.execute("CREATE INDEX runs_pair ON runs(pair_key, status)")
    db.execute("CREATE INDEX runs_batch ON runs(batch_id)")


def _accepted_column(db: sqlite3.Connection) -> None:
    # The column `passed` held whether the feedback pass accepted the attempt (the judge's pass, unless the
    # caller forced a retry), not the judge's verdict (that is verdict.passed): it is called accepted now.
    db.execute("ALTER TABLE runs RENAME COLUMN passed TO accepted")


def _claims_table(db: sqlite3.Connection) -> None:
    # A batch process claims a pair before running it, so two processes on one log share the work; a
    # claim not renewed before expires_at is free again (its process died). See pair_claims.py.
    db.execute("""
        CREATE TABLE claims (
            batch_id TEXT NOT NULL,
            pair_key TEXT NOT NULL,
            owner TEXT NOT NULL,
            expires_at REAL NOT NULL,
            PRIMARY KEY (batch_id, pair_key)
        )""")


def _ratings_table(db: sqlite3.Connection) -> None:
    # A person's rating of a run, kept apart from the automatic verdict (runs.accepted, verdict); the newest
    # rating of a run is the one that counts, older ones stay as history.
    db.execute("""
        CREATE TABLE ratings (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            run_id INTEGER NOT NULL REFERENCES runs(id),
            created_at REAL NOT NULL,
            rating TEXT NOT NULL CHECK (rating IN ('good', 'bad')),
            note TEXT,
            source TEXT NOT NULL
        )""")
    db.execute("CREATE INDEX ratings_run ON ratings(run_id, id)")


# Ordered; entry i takes the schema from version i to i + 1. Only ever append.
MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_v1, _v2, _accepted_column, _claims_table,
                                                       _ratings_table]
SCHEMA_VERSION = len(MIGRATIONS)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _pair_key(sketch_sha: str, reference_sha: str | None) -> str:
    # batch resume compares RunLog.pair_key with the keys start_run wrote: one formula for both
    return hashlib.sha256(f"{sketch_sha}:{reference_sha or 'no-reference'}".encode()).hexdigest()


def schema_version(db: sqlite3.Connection) -> int:
    db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    row = db.execute("SELECT MAX(version) FROM schema_version").fetchone()
    return int(row[0] or 0)


def migrate(db: sqlite3.Connection, target: int = SCHEMA_VERSION) -> int:
    """Apply the missing migrations up to target, each in its own transaction; returns the new version."""
    current = schema_version(db)
    if current > SCHEMA_VERSION:
        raise RunLogError(f"the run log has schema v{current}, newer than this code (v{SCHEMA_VERSION})")
    for version in range(current, target):
        db.execute("BEGIN IMMEDIATE")
        try:
            MIGRATIONS[version](db)
            db.execute("INSERT INTO schema_version (version) VALUES (?)", (version + 1,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
    return max(current, target)


def check_log_file(path: Path) -> None:
    """Refuse a path that holds something other than an SQLite file (opening it would write the schema
    into someone's file). Call it before this process opens any connection to the file: closing a file
    descriptor drops every POSIX lock the process holds on it, SQLite's included (that corrupts the log),
    so RunLog itself never opens the file directly."""
    path = Path(path)
    if path.is_dir():
        raise RunLogError(f"the run log {path} is a folder, not a file")
    if path.is_file() and path.stat().st_size:
        with open(path, "rb") as fh:
            if fh.read(len(SQLITE_MAGIC)) != SQLITE_MAGIC:
                raise RunLogError(f"the run log {path} is not an SQLite file (a run log or nothing goes there)")


class RunLog:
    """The run log file. Not shared between threads; open one per process (WAL lets them coexist)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.is_dir():
            raise RunLogError(f"the run log {self.path} is a folder, not a file")
        # isolation_level=None: autocommit, so each statement is durable the moment it returns.
        self._db = sqlite3.connect(str(self.path), isolation_level=None, timeout=30.0)
        self._db.row_factory = sqlite3.Row
        try:
            mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise RunLogError(f"the run log {self.path} could not switch to WAL mode (got {mode!r})")
            self._db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL survives a killed process
            self._db.execute("PRAGMA foreign_keys=ON")
            migrate(self._db)
            self._db.execute("SELECT COUNT(*) FROM runs").fetchone()  # a cut-short file fails here, not later
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise RunLogError(unreadable(self.path, exc)) from None
        except BaseException:
            self._db.close()
            raise

    @staticmethod
    def default_path(comfy_user_dir: Path | None = None) -> Path:
        """ComfyUI's user folder when known (<user>/m4_director/m4_runs.sqlite3), else $M4_RUN_LOG,
        else ./m4_runs.sqlite3 in the working folder."""
        if comfy_user_dir is not None:
            return Path(comfy_user_dir) / "m4_director" / FILE_NAME
        env = os.environ.get(ENV_PATH)
        if env:
            return Path(env)
        return Path.cwd() / FILE_NAME

    # ---- lifecycle ----

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> RunLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        return schema_version(self._db)

    @property
    def connection(self) -> sqlite3.Connection:
        """The log's SQLite connection (autocommit), for the modules that own a table of it (pair_claims)."""
        return self._db

    @property
    def journal_mode(self) -> str:
        return str(self._db.execute("PRAGMA journal_mode").fetchone()[0])

    # ---- writing ----

    @staticmethod
    def pair_key(sketch: Path | str, reference: Path | str | None) -> str:
        """sha256 over the two files' contents: the same images under other paths are the same pair."""
        return _pair_key(file_sha256(Path(sketch)), file_sha256(Path(reference)) if reference is not None else None)

    def start_run(self, *, sketch: Path, reference: Path | None, server: str, batch_id: str | None = None,
                  attempt: int = 1, parent_run: int | None = None) -> int:
        """A new row at stage 'started', status 'running'; returns its id."""
        if not isinstance(attempt, int) or attempt < 1:
            raise RunLogError(f"attempt: expected an integer >= 1, got {attempt!r}")
        sketch = Path(sketch)
        ref = Path(reference) if reference is not None else None
        for role, p in (("sketch", sketch), ("reference", ref)):
            if p is not None and not p.is_file():
                raise RunLogError(f"{role}: {p} is not a file")
        if parent_run is not None:
            self._require(parent_run)
        sketch_sha = file_sha256(sketch)
        ref_sha = file_sha256(ref) if ref is not None else None
        key = _pair_key(sketch_sha, ref_sha)
        now = time.time()
        cur = self._db.execute(
            "INSERT INTO runs (created_at, updated_at, batch_id, attempt, parent_run, server, sketch_path, "
            "sketch_sha256, reference_path, reference_sha256, pair_key, stage, status) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'started', 'running')",
            (now, now, batch_id, attempt, parent_run, server, str(sketch.resolve()), sketch_sha,
             str(ref.resolve()) if ref is not None else None, ref_sha, key))
        return int(cur.lastrowid or 0)

    def start_hashed_run(self, *, sketch_name: str, sketch_sha256: str, reference_name: str | None,
                         reference_sha256: str | None, server: str) -> int:
        """A row for a run whose inputs are pixels, not files (a ComfyUI canvas run): named and hashed by
        the caller (sha256 of the pixel bytes); the pair key uses the same formula as start_run."""
        for label, sha in (("sketch_sha256", sketch_sha256), ("reference_sha256", reference_sha256)):
            if sha is not None and (not isinstance(sha, str) or len(sha) != 64):
                raise RunLogError(f"{label}: expected a sha256 hex digest, got {sha!r}")
        now = time.time()
        cur = self._db.execute(
            "INSERT INTO runs (created_at, updated_at, attempt, server, sketch_path, sketch_sha256, reference_path, "
            "reference_sha256, pair_key, stage, status) VALUES (?, ?, 1, ?, ?, ?, ?, ?, ?, 'started', 'running')",
            (now, now, server, str(sketch_name), sketch_sha256, reference_name, reference_sha256,
             _pair_key(sketch_sha256, reference_sha256)))
        return int(cur.lastrowid or 0)

    def _require(self, run_id: int) -> None:
        if self._db.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone() is None:
            raise RunLogError(f"run_id: no run {run_id!r} in {self.path}")

    def _update(self, run_id: int, columns: dict[str, Any]) -> None:
        self._require(run_id)
        columns = {**columns, "updated_at": time.time()}
        sets = ", ".join(f"{name} = ?" for name in columns)  # names come from the fixed lists above
        self._db.execute(f"UPDATE runs SET {sets} WHERE id = ?", (*columns.values(), run_id))  # noqa: S608

    def set_stage(self, run_id: int, stage: str) -> None:
        if not isinstance(stage, str) or not stage.strip():
            raise RunLogError(f"stage: expected a non-empty text, got {stage!r}")
        self._update(run_id, {"stage": stage})

    def record(self, run_id: int, **fields: Any) -> None:
        """Store fields: JSON ones (plan, diagnostics, prompts, workflow, timings, metrics, verdict, images),
        text ones (tags, out_dir, label) and accepted (bool: the feedback pass accepted the attempt;
        `passed`, its old name, is taken as the same field)."""
        columns: dict[str, Any] = {}
        for name, value in fields.items():
            if name in JSON_FIELDS:
                try:
                    columns[name] = None if value is None else json.dumps(value, sort_keys=True, allow_nan=False,
                                                                           default=str)
                except ValueError as exc:
                    raise RunLogError(f"{name}: not storable as JSON ({exc})") from None
            elif name in TEXT_FIELDS:
                columns[name] = None if value is None else str(value)
            elif name in ("accepted", "passed"):
                columns["accepted"] = None if value is None else int(bool(value))
            else:
                known = ", ".join((*JSON_FIELDS, *TEXT_FIELDS, "accepted"))
                raise RunLogError(f"record: unknown field {name!r} (known: {known})")
        if columns:
            self._update(run_id, columns)

    def finish(self, run_id: int, *, status: str, error: str | None = None) -> None:
        if status not in FINISH_STATUSES:
            raise RunLogError(f"status: expected one of {FINISH_STATUSES}, got {status!r}")
        self._update(run_id, {"status": status, "error": error})

    def rate(self, run_id: int, rating: str, *, note: str | None = None, source: str = "cli") -> int:
        """Store a person's rating ('good' or 'bad') of a run; returns the rating's id."""
        if rating not in RATINGS:
            raise RunLogError(f"rating: expected one of {RATINGS}, got {rating!r}")
        if not isinstance(run_id, int) or isinstance(run_id, bool):
            raise RunLogError(f"run_id: expected an integer, got {run_id!r}")
        self._require(run_id)
        cur = self._db.execute("INSERT INTO ratings (run_id, created_at, rating, note, source) VALUES (?, ?, ?, ?, ?)",
                               (run_id, time.time(), rating, note, str(source)))
        return int(cur.lastrowid or 0)

    def ratings(self, run_id: int | None = None) -> dict[int, dict[str, Any]]:
        """{run id: its newest rating row} (rating, note, source, created_at)."""
        sql = ("SELECT r.* FROM ratings r JOIN (SELECT run_id, MAX(id) AS last FROM ratings GROUP BY run_id) m "
               "ON r.id = m.last")
        params: tuple[Any, ...] = ()
        if run_id is not None:
            sql += " WHERE r.run_id = ?"
            params = (run_id,)
        return {int(row["run_id"]): dict(row) for row in self._db.execute(sql, params)}

    # ---- reading ----

    def done_pairs(self, batch_id: str | None = None, *, pair_key: str | None = None) -> set[str]:
        """Pair keys whose last attempt finished 'done': a passing first attempt, an unjudged one, or a
        finished retry. A first attempt that failed the judge is not enough: its retry must finish too.
        pair_key: only ask about that pair."""
        sql = ("SELECT DISTINCT pair_key FROM runs WHERE status = 'done' "
               "AND (accepted IS NULL OR accepted = 1 OR attempt > 1)")
        params: list[Any] = []
        if batch_id is not None:
            sql += " AND batch_id = ?"
            params.append(batch_id)
        if pair_key is not None:
            sql += " AND pair_key = ?"
            params.append(pair_key)
        return {row[0] for row in self._db.execute(sql, params)}

    def runs(self, *, status: str | None = None, batch_id: str | None = None, limit: int | None = None,
             run_id: int | None = None) -> list[dict[str, Any]]:
        """Rows as dicts (JSON columns decoded, accepted as bool), oldest first."""
        where: list[str] = []
        params: list[Any] = []
        if status is not None:
            if status not in STATUSES:
                raise RunLogError(f"status: expected one of {STATUSES}, got {status!r}")
            where.append("status = ?")
            params.append(status)
        if batch_id is not None:
            where.append("batch_id = ?")
            params.append(batch_id)
        if run_id is not None:
            where.append("id = ?")
            params.append(run_id)
        # only fixed clause texts are joined; every value is a parameter
        sql = "SELECT * FROM runs" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY id"  # noqa: S608
        if limit is not None:
            if not isinstance(limit, int) or limit < 0:
                raise RunLogError(f"limit: expected an integer >= 0, got {limit!r}")
            sql += f" LIMIT {int(limit)}"
        try:
            return [self._decode(row) for row in self._db.execute(sql, params)]
        except sqlite3.DatabaseError as exc:
            raise RunLogError(unreadable(self.path, exc)) from None
        except ValueError as exc:  # a JSON cell that is not JSON
            raise RunLogError(f"the run log {self.path} holds a cell that is not JSON ({exc})") from None

    def get(self, run_id: int) -> dict[str, Any]:
        rows = self.runs(run_id=run_id)
        if not rows:
            raise RunLogError(f"run_id: no run {run_id!r} in {self.path}")
        return rows[0]

    @staticmethod
    def _decode(row: sqlite3.Row) -> dict[str, Any]:
        out = dict(row)
        for name in JSON_FIELDS:
            if out.get(name) is not None:
                out[name] = json.loads(out[name])
        if out.get("accepted") is not None:
            out["accepted"] = bool(out["accepted"])
        return out

    def export(self, path: Path, fmt: str = "json", *, force: bool = False, **filters: Any) -> int:
        """Write the runs matching filters (as runs() takes them) to CSV or JSON; returns the row count.

        CSV keeps one column per field; JSON columns are written as JSON text in their cells. Nothing is
        destroyed: the run log itself (or its -wal/-shm files) is refused, an existing file or a symlink
        only with force (a symlink is then replaced, never followed), the folder must exist, and the rows
        go to a temporary file renamed into place (a full disk leaves the target as it was).
        """
        if fmt not in ("csv", "json"):
            raise RunLogError(f"fmt: expected 'csv' or 'json', got {fmt!r}")
        try:
            target = export_target(Path(path), self.path, force=force)
            rows = self.runs(**filters)
            columns = [r[1] for r in self._db.execute("PRAGMA table_info(runs)")]
            write_atomically(target, lambda fh: write_rows(fh, rows, fmt, columns, JSON_FIELDS))
        except ExportError as exc:
            raise RunLogError(str(exc)) from None
        return len(rows)

