"""`./m4 batch` / `./m4 runs` against real ComfyUI servers: fan-out across two servers, a server stopped
mid-run, and resume after an interrupted batch, all checked through the SQLite run log.

The runs use RANDOM-WEIGHT STAND-IN MODELS (--standins: the servers only have the generated checkpoint and
ControlNet); images are noise, so the Line Quality judge usually fails them and the one retry runs too.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from agents.runtime.run_log import RunLog
from cli import batch
from cli.run_cmd import connect
from cli.runs_cmd import main as runs_main

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SKETCHES = [FIXTURES / "sketches" / n for n in ("house_line.png", "bag_scribble.png", "human_line.png")]
REFERENCES = [FIXTURES / "references" / n for n in ("saber.png", "madoka_lineart.png")]


def _pair_file(tmp_path: Path, pairs: list[tuple[Path, Path]]) -> Path:
    listing = tmp_path / "pairs.csv"
    listing.write_text("sketch,reference\n" + "".join(f"{s},{r}\n" for s, r in pairs))
    return listing


def _final_done(log: RunLog, batch_id: str) -> Counter[str]:
    """Per pair key: the runs that finished the pair (a passing first attempt or a finished retry)."""
    return Counter(r["pair_key"] for r in log.runs(status="done", batch_id=batch_id)
                   if r["accepted"] is None or r["accepted"] or r["attempt"] > 1)


@pytest.fixture(scope="module")
def second_server(tmp_path_factory: pytest.TempPathFactory):
    from host.server import start_server

    srv = start_server(tmp_path_factory.mktemp("comfy-second"))
    yield srv
    srv.stop()


def test_two_servers_share_a_batch(comfy_server, second_server, tmp_path: Path, capsys) -> None:
    pairs = [(SKETCHES[0], REFERENCES[0]), (SKETCHES[1], REFERENCES[1])]
    log_path = tmp_path / "runs.sqlite3"
    argv = [str(_pair_file(tmp_path, pairs)), "--server", comfy_server.url, "--server", second_server.url,
            "--standins", "--per-server", "1", "--template", "adaptive", "--log", str(log_path),
            "--out", str(tmp_path / "out")]
    assert batch.main(argv) == 0
    out = capsys.readouterr().out
    assert "STAND-IN" in out and "2 done" in out
    with RunLog(log_path) as log:
        rows = log.runs()
        batch_id = rows[0]["batch_id"]
        keys = {log.pair_key(s, r) for s, r in pairs}
        assert log.done_pairs(batch_id) == keys
        assert _final_done(log, batch_id) == Counter(dict.fromkeys(keys, 1))
        # Both servers got pairs: the log's server column says where every run went.
        servers = Counter(r["server"] for r in rows if r["attempt"] == 1)
        assert set(servers) == {comfy_server.url, second_server.url}, servers
        assert all(r["status"] == "done" for r in rows)
    # Each pair has its report with the images of its attempts.
    reports = sorted((tmp_path / "out").glob("*/report.html"))
    assert len(reports) == 2
    page = reports[0].read_text()
    assert "attempt 1: Line Quality" in page and "STAND-IN" in page
    # The adaptive template's per-call CFG (m4.guidance websocket events) is charted per attempt.
    assert 'src="schedule-1.png"' in page and (reports[0].parent / "schedule-1.png").stat().st_size > 1000
    assert all((reports[0].parent / src).is_file()
               for src in [part.split('"')[0] for part in page.split('<img src="')[1:]])
    # Re-running the finished batch runs nothing.
    assert batch.main(argv) == 0
    assert "2 already done, 0 to run" in capsys.readouterr().out
    with RunLog(log_path) as log:
        assert len(log.runs()) == len(rows)
    # ./m4 runs lists and exports the same rows.
    assert runs_main(["--log", str(log_path), "--batch", batch_id, "--export", str(tmp_path / "runs.json")]) == 0
    exported = json.loads((tmp_path / "runs.json").read_text())
    assert sorted(r["id"] for r in exported) == sorted(r["id"] for r in rows)
    assert runs_main(["--log", str(log_path), "--status", "done"]) == 0
    assert second_server.url in capsys.readouterr().out


def test_server_stopped_mid_run_then_resumed(comfy_server, second_server, tmp_path: Path, capsys) -> None:
    """Runs after the two-server test: it stops the module's second server for good."""
    pair = (SKETCHES[2], REFERENCES[0])
    log_path = tmp_path / "runs.sqlite3"
    listing = _pair_file(tmp_path, [pair])
    common = [str(listing), "--standins", "--log", str(log_path), "--out", str(tmp_path / "out"), "--no-report"]
    probe = batch.ComfyClient(second_server.url)
    stopped = threading.Event()

    def stop_when_running() -> None:
        # Stop the server as soon as our prompt sits in its queue: a real process exit mid-run.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if probe.queue_remaining() > 0:
                    second_server.stop()
                    stopped.set()
                    return
            except batch.ComfyClientError:
                return
            time.sleep(0.02)

    killer = threading.Thread(target=stop_when_running)
    killer.start()
    code = batch.main([*common, "--server", second_server.url])
    killer.join()
    assert stopped.is_set()
    captured = capsys.readouterr()
    assert code == 2  # every error exit is 2
    assert "went away" in captured.out and second_server.url in captured.out
    assert "no server could take the remaining pairs" in captured.err
    with RunLog(log_path) as log:
        [row] = log.runs()
        assert row["status"] == "incomplete" and row["stage"] == "running"
        assert "ServerUnavailable" in row["error"] or "did not answer" in row["error"]
        assert log.done_pairs(row["batch_id"]) == set()
    # The same command on a live server finishes only that pair.
    assert batch.main([*common, "--server", comfy_server.url]) == 0
    with RunLog(log_path) as log:
        batch_id = log.runs()[0]["batch_id"]
        key = log.pair_key(*pair)
        assert log.done_pairs(batch_id) == {key}
        assert _final_done(log, batch_id) == Counter({key: 1})
        assert [r["status"] for r in log.runs(status="incomplete")] == ["incomplete"]


def test_interrupted_batch_resumes_with_one_done_run_per_pair(comfy_server, tmp_path: Path) -> None:
    pairs = [(s, r) for s in SKETCHES for r in REFERENCES[:1]] + [(SKETCHES[0], REFERENCES[1])]
    target = connect(comfy_server.url, standins=True, template=None)
    log_path = tmp_path / "runs.sqlite3"
    stop = threading.Event()
    said: list[str] = []

    def on_done(outcome: batch.BatchOutcome) -> None:
        stop.set()  # the same path Ctrl-C takes: no new pairs, the running prompt is interrupted

    first = batch.run_batch(pairs, [target], log_path=log_path, out_root=tmp_path / "out", template=None,
                            per_server=2, stop=stop, say=said.append, report=False, on_done=on_done)
    assert first.interrupted and not first.complete
    assert 1 <= len(first.done) < len(pairs) and first.left
    assert any("interrupting" in line for line in said)
    with RunLog(log_path) as log:
        assert len(log.done_pairs(first.batch_id)) == len(first.done)
    second = batch.run_batch(pairs, [target], log_path=log_path, out_root=tmp_path / "out", template=None,
                             per_server=2, say=said.append, report=False)
    assert second.complete and second.batch_id == first.batch_id
    assert {p for p in second.skipped} == set(first.done)
    assert len(second.done) == len(pairs) - len(first.done)
    with RunLog(log_path) as log:
        keys = {log.pair_key(s, r) for s, r in pairs}
        assert _final_done(log, first.batch_id) == Counter(dict.fromkeys(keys, 1))
        # No pair was started again once it was done: its first attempts are the interrupted ones plus one.
        firsts = Counter(r["pair_key"] for r in log.runs(batch_id=first.batch_id) if r["attempt"] == 1)
        incomplete = Counter(r["pair_key"] for r in log.runs(status="incomplete", batch_id=first.batch_id))
        assert all(firsts[k] == 1 + incomplete[k] for k in keys), (firsts, incomplete)
