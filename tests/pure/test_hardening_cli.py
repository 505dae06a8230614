"""Issue 11 items 4 and 5: `./m4 runs --export` never destroys data, and every error exit of the
commands is 2 with one `error:` line and no traceback (the listed cases, the SIGABRT at shutdown, and a
fuzz test over generated bad arguments and files)."""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import sqlite3
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents.runtime import run_log
from agents.runtime.run_log import RunLog, RunLogError
from cli import __main__ as cli_main
from cli.runs_cmd import main as runs_main
from host.hostile_peer import Answer, Script, hostile_server, json_answer

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"
SKETCH = FIXTURES / "sketches" / "house_line.png"
REFERENCE = FIXTURES / "references" / "saber.png"
TEMPLATE = REPO / "workflows" / "api" / "Animation_Workflow_M4_Api.json"


def m4(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`./m4 <argv>` as a real process (python -m cli), in the repository."""
    return subprocess.run([sys.executable, "-m", "cli", *argv], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=180, check=False)


def assert_one_error_line(code: int, err: str) -> None:
    assert code == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err


def make_log(path: Path, rows: int = 3) -> Path:
    with RunLog(path) as log:
        for _ in range(rows):
            rid = log.start_run(sketch=SKETCH, reference=REFERENCE, server="http://s")
            log.record(rid, plan={"cfg1": 8}, accepted=True)
            log.finish(rid, status="done")
    return path


def rows_in(path: Path) -> int:
    with RunLog(path) as log:
        return len(log.runs())


# ---- item 4: --export never destroys data ------------------------------------------------------

def test_export_onto_the_log_itself_is_refused_and_the_history_kept(tmp_path: Path) -> None:
    log = make_log(tmp_path / "runs.sqlite3")
    for target in (log, tmp_path / "." / "runs.sqlite3", Path(str(log) + "-wal")):
        done = m4("runs", "--log", str(log), "--export", str(target), "--format", "json", "--force")
        assert_one_error_line(done.returncode, done.stderr)
        assert "run log itself" in done.stderr
    assert rows_in(log) == 3


def test_export_refuses_an_existing_file_unless_forced(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = make_log(tmp_path / "runs.sqlite3")
    target = tmp_path / "mine.json"
    target.write_text("my notes")
    assert runs_main(["--log", str(log), "--export", str(target)]) == 2
    assert "exists; add --force" in capsys.readouterr().err
    assert target.read_text() == "my notes"
    assert runs_main(["--log", str(log), "--export", str(target), "--force"]) == 0
    assert len(json.loads(target.read_text())) == 3


def test_export_does_not_follow_a_symlink(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = make_log(tmp_path / "runs.sqlite3")
    precious = tmp_path / "precious.txt"
    precious.write_text("keep me")
    link = tmp_path / "out.json"
    link.symlink_to(precious)
    assert runs_main(["--log", str(log), "--export", str(link)]) == 2
    assert "symlink" in capsys.readouterr().err
    assert runs_main(["--log", str(log), "--export", str(link), "--force"]) == 0
    assert precious.read_text() == "keep me"  # the link was replaced, its target never written
    assert not link.is_symlink() and len(json.loads(link.read_text())) == 3
    other = tmp_path / "to_log.json"
    other.symlink_to(log)  # a symlink to the log itself: refused even with --force
    assert runs_main(["--log", str(log), "--export", str(other), "--force", "--format", "csv"]) == 2
    assert rows_in(log) == 3


@pytest.mark.parametrize(("where", "said"), [("dir", "is a folder"), ("missing/x.csv", "does not exist")])
def test_export_to_a_folder_or_a_missing_folder_is_one_line(tmp_path: Path, where: str, said: str) -> None:
    log = make_log(tmp_path / "runs.sqlite3")
    (tmp_path / "dir").mkdir()
    done = m4("runs", "--log", str(log), "--export", str(tmp_path / where), "--format", "csv")
    assert_one_error_line(done.returncode, done.stderr)
    assert said in done.stderr
    assert not (tmp_path / "missing").exists()


def test_a_full_disk_leaves_the_old_file_and_no_temporary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    log = make_log(tmp_path / "runs.sqlite3")
    target = tmp_path / "out.csv"
    target.write_text("previous export")

    def full(fh: io.TextIOBase, *_args: object) -> None:
        fh.write("id,status\n1,done\n")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(run_log, "write_rows", full)
    assert runs_main(["--log", str(log), "--export", str(target), "--force"]) == 2
    err = capsys.readouterr().err
    assert "No space left on device" in err and len(err.strip().splitlines()) == 1
    assert target.read_text() == "previous export"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_export_api_refuses_the_log_itself(tmp_path: Path) -> None:
    log = make_log(tmp_path / "runs.sqlite3")
    with RunLog(log) as opened, pytest.raises(RunLogError, match="run log itself"):
        opened.export(log, "json", force=True)
    assert rows_in(log) == 3


# ---- item 5: the listed error cases ------------------------------------------------------------

@pytest.mark.parametrize("side", [1, 3])
def test_a_tiny_image_to_plan_is_one_line(tmp_path: Path, side: int) -> None:
    tiny = tmp_path / f"tiny{side}.png"
    cv2.imwrite(str(tiny), np.zeros((side, side, 3), np.uint8))
    done = m4("plan", "--sketch", str(tiny), "--no-reference", "--out", str(tmp_path / "o"))
    assert_one_error_line(done.returncode, done.stderr)
    assert f"tiny{side}.png: {side}x{side} is too small" in done.stderr


@pytest.mark.parametrize("damage", ["garbage", "truncated", "zero_page"])
def test_a_corrupt_or_truncated_run_log_is_one_line(tmp_path: Path, damage: str) -> None:
    log = make_log(tmp_path / "runs.sqlite3", rows=40)
    with sqlite3.connect(log) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = log.read_bytes()
    if damage == "garbage":
        log.write_bytes(b"this is not a database" * 100)
    elif damage == "truncated":
        log.write_bytes(data[: len(data) // 2])
    else:
        log.write_bytes(data[:100] + b"\xff" * (len(data) - 100))
    for suffix in ("-wal", "-shm"):
        Path(str(log) + suffix).unlink(missing_ok=True)
    done = m4("runs", "--log", str(log))
    assert_one_error_line(done.returncode, done.stderr)
    assert "run log" in done.stderr


@pytest.mark.parametrize("server", ["not a url", "ftp://example.org/x", "127.0.0.1:8188", "http://"])
def test_a_bad_server_url_is_one_line(server: str) -> None:
    done = m4("run", "--server", server, "--sketch", str(SKETCH), "--reference", str(REFERENCE))
    assert_one_error_line(done.returncode, done.stderr)
    assert "--server" in done.stderr


def test_an_error_while_the_reference_is_measured_exits_2_not_sigabrt() -> None:
    # The reference prefetch thread was still inside OpenCV at shutdown: exit 134, "terminate called ...".
    for _ in range(3):
        done = m4("run", "--server", "http://127.0.0.1:9", "--sketch", str(SKETCH), "--reference", str(REFERENCE))
        assert_one_error_line(done.returncode, done.stderr)
        assert "did not answer" in done.stderr


def _object_info() -> dict:
    kinds = {n["class_type"] for n in json.loads(TEMPLATE.read_text()).values()}
    return {k: {"input": {"required": {}}, "output": []} for k in kinds}


@pytest.mark.parametrize("info", [{"KSampler": "x", "CheckpointLoaderSimple": None}, "nodes", None])
def test_object_info_with_strings_or_null_is_one_line(info: object) -> None:
    with hostile_server(Script({"/object_info": json_answer(info)})) as url:
        done = m4("run", "--server", url, "--sketch", str(SKETCH), "--reference", str(REFERENCE))
    assert_one_error_line(done.returncode, done.stderr)
    assert "/object_info" in done.stderr


def _run_against(routes: dict[str, Answer], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    base = {"/object_info": json_answer(_object_info()),
            "POST /upload/image": json_answer({"name": "s.png", "subfolder": "m4", "type": "input"}),
            "POST /queue": json_answer({}), "POST /interrupt": json_answer({})}
    with hostile_server(Script({**base, **routes})) as url:
        return m4("run", "--server", url, "--template", "static", "--sketch", str(SKETCH), "--reference",
                  str(REFERENCE), "--log", str(tmp_path / "log.sqlite3"), "--out", str(tmp_path / "out"))


def test_a_prompt_answer_without_prompt_id_is_one_line(tmp_path: Path) -> None:
    done = _run_against({"POST /prompt": json_answer({"number": 1})}, tmp_path)
    assert_one_error_line(done.returncode, done.stderr)
    assert "without a prompt_id" in done.stderr


def test_a_history_entry_that_is_a_string_is_one_line(tmp_path: Path) -> None:
    done = _run_against({"POST /prompt": json_answer({"prompt_id": "p1", "number": 1, "node_errors": {}}),
                         "/history/": json_answer({"p1": "finished"})}, tmp_path)
    assert_one_error_line(done.returncode, done.stderr)
    assert "GET /history/p1" in done.stderr


def test_export_to_a_folder_as_csv_and_a_bogus_status_are_one_line(tmp_path: Path) -> None:
    log = make_log(tmp_path / "runs.sqlite3")
    for argv in (["--export", str(tmp_path), "--format", "csv"], ["--status", "bogus"], ["--limit", "0"]):
        done = m4("runs", "--log", str(log), *argv)
        assert_one_error_line(done.returncode, done.stderr)


# ---- item 5: fuzz -----------------------------------------------------------------------------

def _png(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 8)) + chunk(b"IEND", b""))


_GOOD = SKETCH.read_bytes()
bad_image_bytes = st.one_of(
    st.binary(max_size=300),
    st.integers(8, len(_GOOD) // 3).map(lambda n: _GOOD[:n]),  # cut short inside the header or the data
    st.tuples(st.integers(1, 15), st.integers(1, 4000)).map(lambda wh: _png(*wh)),  # a side under 16
    st.tuples(st.integers(8000, 70000), st.integers(8000, 70000)).map(lambda wh: _png(*wh)),  # too many pixels
)
not_a_url = st.text(max_size=30).filter(lambda s: not s.strip().lower().startswith(("http://", "https://")))
bad_status = st.text(min_size=1, max_size=12).filter(lambda s: s not in run_log.STATUSES and not s.startswith("-"))


def _call(argv: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    old = sys.argv
    sys.argv = ["cli", *argv]
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = cli_main.main()
    finally:
        sys.argv = old
    return code, err.getvalue()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzz_every_bad_input_is_exit_2_with_one_line(tmp_path: Path, data: st.DataObject) -> None:
    bad = tmp_path / "bad.png"
    case = data.draw(st.sampled_from(["plan-sketch", "plan-reference", "runs-log", "runs-status", "runs-limit",
                                      "run-server", "run-sketch", "batch-server"]))
    if case.startswith(("plan", "run-sketch", "runs-log")):
        bad.write_bytes(data.draw(bad_image_bytes) if case != "runs-log" else data.draw(st.binary(min_size=1,
                                                                                                  max_size=2000)))
    log = make_log(tmp_path / "fuzz.sqlite3", rows=1) if case in ("runs-status", "runs-limit") else bad
    argv = {
        "plan-sketch": ["plan", "--sketch", str(bad), "--no-reference", "--out", str(tmp_path / "o")],
        "plan-reference": ["plan", "--sketch", str(SKETCH), "--reference", str(bad), "--out", str(tmp_path / "o")],
        "runs-log": ["runs", "--log", str(bad)],
        "runs-status": ["runs", "--log", str(log), "--status", data.draw(bad_status)],
        "runs-limit": ["runs", "--log", str(log), "--limit", str(data.draw(st.integers(-10**6, 0)))],
        "run-server": ["run", "--server", data.draw(not_a_url), "--sketch", str(SKETCH), "--reference",
                       str(REFERENCE)],
        "run-sketch": ["run", "--server", "http://127.0.0.1:9", "--sketch", str(bad), "--reference", str(REFERENCE)],
        "batch-server": ["batch", str(FIXTURES / "sketches"), "--reference", str(REFERENCE), "--server",
                         data.draw(not_a_url), "--log", str(tmp_path / "b.sqlite3")],
    }[case]
    code, err = _call(argv)
    assert_one_error_line(code, err)


def test_a_multi_line_server_error_is_still_one_line(tmp_path: Path) -> None:
    failed = {"status": {"status_str": "error", "completed": False, "messages": [
        ["execution_error", {"node_id": "3", "node_type": "KSampler", "exception_type": "RuntimeError",
                             "exception_message": "first line\nTraceback (most recent call last):\n  more"}]]},
        "outputs": {}}
    done = _run_against({"POST /prompt": json_answer({"prompt_id": "p1", "number": 1, "node_errors": {}}),
                         "/history/": json_answer({"p1": failed})}, tmp_path)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert done.stderr.startswith("error: the run did not finish: node 3 (KSampler) failed: RuntimeError: first line")
