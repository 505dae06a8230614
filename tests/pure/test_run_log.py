"""Tier 1: the SQLite run log — WAL, migrations from v1, crash safety, export, done_pairs."""

from __future__ import annotations

import csv
import json
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from agents.runtime import run_log
from agents.runtime.run_log import RunLog, RunLogError

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture()
def images(fixture_data: Path, tmp_path: Path) -> dict[str, Path]:
    """Three real images from the shared data, plus a byte copy of one under another name."""
    found = sorted(p for p in fixture_data.rglob("*") if p.suffix.lower() in {".png", ".jpg", ".jpeg"})
    assert len(found) >= 3, "the shared data needs three images"
    copy = tmp_path / "renamed_copy.png"
    copy.write_bytes(found[0].read_bytes())
    return {"a": found[0], "b": found[1], "c": found[2], "a_copy": copy}


def test_the_log_runs_in_wal_mode_at_the_latest_schema(tmp_path: Path) -> None:
    with RunLog(tmp_path / "log.sqlite3") as log:
        assert log.journal_mode.lower() == "wal"
        assert log.schema_version == len(run_log.MIGRATIONS) >= 2
    # another connection sees WAL too: it is a property of the file, not of our connection
    db = sqlite3.connect(tmp_path / "log.sqlite3")
    assert db.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal"
    db.close()


def test_a_v1_database_is_migrated_and_keeps_its_rows(tmp_path: Path, images: dict[str, Path]) -> None:
    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path, isolation_level=None)
    run_log.migrate(db, target=1)  # a file as the first release wrote it
    assert run_log.schema_version(db) == 1
    db.execute("INSERT INTO runs (created_at, updated_at, server, sketch_path, sketch_sha256, pair_key, stage, "
               "status, plan) VALUES (1, 1, 'http://old', 's.png', 'abc', 'k1', 'judging', 'done', '{\"cfg1\": 8}')")
    columns_v1 = {r[1] for r in db.execute("PRAGMA table_info(runs)")}
    db.close()
    assert "images" not in columns_v1

    with RunLog(path) as log:
        assert log.schema_version == run_log.SCHEMA_VERSION
        old = log.runs()
        assert len(old) == 1 and old[0]["plan"] == {"cfg1": 8} and old[0]["images"] is None
        run_id = log.start_run(sketch=images["a"], reference=images["b"], server="http://new")
        log.record(run_id, images={"final": "x.png"}, label="attempt 1")
        assert log.get(run_id)["images"] == {"final": "x.png"}
    versions = [r[0] for r in sqlite3.connect(path).execute("SELECT version FROM schema_version ORDER BY version")]
    assert versions == list(range(1, run_log.SCHEMA_VERSION + 1))


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.sqlite3"
    RunLog(path).close()
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("INSERT INTO schema_version (version) VALUES (?)", (run_log.SCHEMA_VERSION + 5,))
    db.close()
    with pytest.raises(RunLogError, match="newer than this code"):
        RunLog(path)


def test_stage_updates_survive_a_killed_process(tmp_path: Path, images: dict[str, Path]) -> None:
    path = tmp_path / "crash.sqlite3"
    script = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(REPO)!r})
        from agents.runtime.run_log import RunLog
        log = RunLog({str(path)!r})
        done = log.start_run(sketch={str(images['a'])!r}, reference=None, server='http://x')
        log.set_stage(done, 'judging'); log.finish(done, status='done')
        rid = log.start_run(sketch={str(images['b'])!r}, reference={str(images['c'])!r}, server='http://x')
        log.set_stage(rid, 'planning')
        log.record(rid, plan={{'cfg1': 8.5}}, timings={{'planning_s': 0.1}})
        log.set_stage(rid, 'running')
        print(rid, flush=True)
        time.sleep(120)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        assert line.strip().isdigit(), f"the writer did not get going (exit {proc.poll()})"
        proc.send_signal(signal.SIGKILL)  # no close(), no atexit: a hard crash mid-run
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    with RunLog(path) as log:
        crashed = log.get(int(line))
        assert crashed["stage"] == "running" and crashed["status"] == "running"
        assert crashed["plan"] == {"cfg1": 8.5} and crashed["timings"] == {"planning_s": 0.1}
        assert [r["status"] for r in log.runs()] == ["done", "running"]
        assert log.done_pairs() == {RunLog.pair_key(images["a"], None)}


def test_start_run_stores_hashes_and_paths(tmp_path: Path, images: dict[str, Path]) -> None:
    import hashlib

    with RunLog(tmp_path / "log.sqlite3") as log:
        rid = log.start_run(sketch=images["a"], reference=images["b"], server="http://s", batch_id="B")
        row = log.get(rid)
    assert row["sketch_sha256"] == hashlib.sha256(images["a"].read_bytes()).hexdigest()
    assert row["reference_sha256"] == hashlib.sha256(images["b"].read_bytes()).hexdigest()
    assert row["sketch_path"] == str(images["a"].resolve()) and row["reference_path"] == str(images["b"].resolve())
    assert (row["stage"], row["status"], row["attempt"], row["batch_id"]) == ("started", "running", 1, "B")
    # the key follows the contents: a renamed copy is the same pair, a swapped pair is not
    assert RunLog.pair_key(images["a_copy"], images["b"]) == row["pair_key"]
    assert RunLog.pair_key(images["b"], images["a"]) != row["pair_key"]


def _finished(log: RunLog, sketch: Path, ref: Path, *, passed: bool | None, batch: str | None = "B1",
              status: str = "done", attempt: int = 1, parent: int | None = None) -> int:
    rid = log.start_run(sketch=sketch, reference=ref, server="http://s", batch_id=batch, attempt=attempt,
                        parent_run=parent)
    if passed is not None:
        log.record(rid, passed=passed)
    log.finish(rid, status=status)
    return rid


def test_done_pairs_counts_finished_pairs_once(tmp_path: Path, images: dict[str, Path]) -> None:
    a, b, c = images["a"], images["b"], images["c"]
    with RunLog(tmp_path / "log.sqlite3") as log:
        _finished(log, a, b, passed=True)                                  # passed first time
        first = _finished(log, a, c, passed=False)                         # failed, retry finished
        _finished(log, a, c, passed=False, attempt=2, parent=first)
        first = _finished(log, b, c, passed=False)                         # failed, retry crashed
        _finished(log, b, c, passed=None, attempt=2, parent=first, status="incomplete")
        _finished(log, c, a, passed=None, status="failed")                 # server error
        _finished(log, c, b, passed=None)                                  # not judged: done
        _finished(log, b, a, passed=True, batch="B2")                      # other batch
        assert log.done_pairs("B1") == {RunLog.pair_key(a, b), RunLog.pair_key(a, c), RunLog.pair_key(c, b)}
        assert log.done_pairs() == log.done_pairs("B1") | {RunLog.pair_key(b, a)}
        assert log.done_pairs("nothing") == set()


def test_runs_filters_and_exports_csv_and_json(tmp_path: Path, images: dict[str, Path]) -> None:
    with RunLog(tmp_path / "log.sqlite3") as log:
        one = _finished(log, images["a"], images["b"], passed=True)
        log.record(one, plan={"cfg1": 8.0, "nested": {"x": [1, 2]}}, verdict={"passed": True, "failures": []})
        _finished(log, images["b"], images["c"], passed=None, status="failed")
        _finished(log, images["c"], images["a"], passed=None, batch="B2")
        assert [r["id"] for r in log.runs(status="done")] == [one, one + 2]
        assert len(log.runs(batch_id="B1")) == 2 and len(log.runs(limit=1)) == 1
        (tmp_path / "out").mkdir()  # an export never creates folders (a missing one is a named error)
        n_json = log.export(tmp_path / "out" / "runs.json", "json", status="done")
        n_csv = log.export(tmp_path / "runs.csv", "csv")
        with pytest.raises(RunLogError, match="fmt"):
            log.export(tmp_path / "runs.xml", "xml")
    data = json.loads((tmp_path / "out" / "runs.json").read_text())
    assert n_json == len(data) == 2 and data[0]["plan"]["nested"] == {"x": [1, 2]} and data[0]["accepted"] is True
    with open(tmp_path / "runs.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert n_csv == len(rows) == 3
    assert [r["status"] for r in rows] == ["done", "failed", "done"]
    assert json.loads(rows[0]["verdict"]) == {"passed": True, "failures": []}


def test_bad_arguments_are_named(tmp_path: Path, images: dict[str, Path]) -> None:
    with RunLog(tmp_path / "log.sqlite3") as log:
        rid = log.start_run(sketch=images["a"], reference=None, server="http://s")
        with pytest.raises(RunLogError, match="unknown field 'colour'"):
            log.record(rid, colour="red")
        with pytest.raises(RunLogError, match="status"):
            log.finish(rid, status="maybe")
        with pytest.raises(RunLogError, match="no run 999"):
            log.set_stage(999, "x")
        with pytest.raises(RunLogError, match="sketch"):
            log.start_run(sketch=tmp_path / "missing.png", reference=None, server="http://s")
        with pytest.raises(RunLogError, match="plan"):
            log.record(rid, plan={"cfg": float("nan")})


def test_default_path_prefers_the_comfy_user_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert RunLog.default_path(tmp_path / "user") == tmp_path / "user" / "m4_director" / run_log.FILE_NAME
    monkeypatch.setenv(run_log.ENV_PATH, str(tmp_path / "given.sqlite3"))
    assert RunLog.default_path() == tmp_path / "given.sqlite3"
    monkeypatch.delenv(run_log.ENV_PATH)
    monkeypatch.chdir(tmp_path)
    assert RunLog.default_path() == tmp_path / run_log.FILE_NAME


def test_a_v2_log_column_passed_reads_as_accepted(tmp_path: Path) -> None:
    # Issue 10 item 5: the column held whether the feedback pass accepted the attempt; it is named so now.
    path = tmp_path / "v2.sqlite3"
    db = sqlite3.connect(path, isolation_level=None)
    run_log.migrate(db, target=2)
    db.execute("INSERT INTO runs (created_at, updated_at, server, sketch_path, sketch_sha256, pair_key, stage, "
               "status, passed) VALUES (1, 1, 'http://old', 's.png', 'abc', 'k1', 'judged', 'done', 1)")
    db.close()
    with RunLog(path) as log:
        [row] = log.runs()
        assert row["accepted"] is True and "passed" not in row
        assert log.done_pairs() == {"k1"}
        log.record(row["id"], passed=False)  # the old field name still writes the same column
        assert log.get(row["id"])["accepted"] is False
