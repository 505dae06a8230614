"""Issue 11 item 6: two `./m4 batch` processes on one run log share the pairs (each pair claimed in the
log before it runs) instead of each running every pair; a dead process's claim expires."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from agents.runtime.pair_claims import PairClaims
from agents.runtime.run_log import RunLog, RunLogError
from host.hostile_peer import Script, hostile_server, json_answer

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"
WORKER = REPO / "tests" / "host" / "batch_worker.py"
def _distinct(paths: list[Path]) -> list[Path]:
    """One path per content (two fixtures with the same bytes are one pair to the batch)."""
    seen: dict[bytes, Path] = {}
    for p in paths:
        seen.setdefault(p.read_bytes(), p)
    return list(seen.values())


SKETCHES = _distinct(sorted((FIXTURES / "sketches").glob("*.png")))[:6]
REFERENCE = FIXTURES / "references" / "saber.png"


def test_a_claim_is_mine_busy_for_others_done_when_finished_and_free_once_expired(tmp_path: Path) -> None:
    with RunLog(tmp_path / "log.sqlite3") as log:
        a, b = PairClaims(log, "a"), PairClaims(log, "b")
        assert a.claim("B", "k1", 5) == "mine" and a.claim("B", "k1", 5) == "mine"
        assert b.claim("B", "k1", 5) == "busy"
        assert b.claim("other batch", "k1", 5) == "mine"
        a.release_all()
        assert b.claim("B", "k1", 2) == "mine"
        log.connection.execute("UPDATE claims SET expires_at = ? WHERE owner = 'b'", (time.time() - 1,))
        assert a.claim("B", "k1", 5) == "mine"  # b stopped renewing: its claim lapsed
        rid = log.start_run(sketch=SKETCHES[0], reference=REFERENCE, server="http://s", batch_id="B")
        log.finish(rid, status="done")
        key = log.get(rid)["pair_key"]
        assert b.claim("B", key, 5) == "done"
        assert b.renew(5) == 1
        with pytest.raises(RunLogError, match="lease"):
            a.claim("B", "k2", 0)


def _start(log: Path, url: str, seconds: float, lease: float, sketches: list[Path]) -> subprocess.Popen[str]:
    argv = [sys.executable, str(WORKER), str(log), url, str(seconds), str(lease), *map(str, sketches),
            "--reference", str(REFERENCE)]
    return subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO / "tests")})


def _result(proc: subprocess.Popen[str]) -> dict:
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    return {**json.loads(out.strip().splitlines()[-1]), "log": err}


def _done_rows(log: Path) -> Counter[str]:
    with RunLog(log) as opened:
        return Counter(Path(r["sketch_path"]).name for r in opened.runs(status="done"))


def test_two_batch_processes_on_one_log_share_the_pairs(tmp_path: Path) -> None:
    log = tmp_path / "runs.sqlite3"
    RunLog(log).close()
    queue = Script({"/queue": json_answer({"queue_running": [], "queue_pending": []})})
    with hostile_server(queue) as url:
        first = _start(log, url, 0.8, 30, SKETCHES)
        second = _start(log, url, 0.8, 30, SKETCHES)
        one, two = _result(first), _result(second)
    assert one["ran"] and two["ran"], (one, two)  # both did part of the work
    assert not set(one["ran"]) & set(two["ran"]), (one, two)  # no pair ran twice
    assert sorted(one["ran"] + two["ran"]) == sorted(s.name for s in SKETCHES), (one, two)
    assert _done_rows(log) == Counter({s.name: 1 for s in SKETCHES})
    with RunLog(log) as opened:
        assert PairClaims(opened, "x").held() == []  # both released their claims at the end


def test_a_dead_processs_claim_expires_and_its_pair_is_taken_over(tmp_path: Path) -> None:
    log = tmp_path / "runs.sqlite3"
    sketches = SKETCHES[:2]
    with RunLog(log) as opened:
        key = opened.pair_key(sketches[0], REFERENCE)
        batch = __import__("cli.batch", fromlist=["default_batch_id"]).default_batch_id(
            sorted(opened.pair_key(s, REFERENCE) for s in sketches))
        assert PairClaims(opened, "dead-process").claim(batch, key, 3) == "mine"  # and then it died
    queue = Script({"/queue": json_answer({"queue_running": [], "queue_pending": []})})
    started = time.monotonic()
    with hostile_server(queue) as url:
        result = _result(_start(log, url, 0.1, 3, sketches))
    assert sorted(result["ran"]) == sorted(s.name for s in sketches) and result["left"] == 0
    assert result["ran"][-1] == sketches[0].name  # the claimed pair waited for the lease to run out
    assert time.monotonic() - started >= 2.0
    assert _done_rows(log) == Counter({s.name: 1 for s in sketches})
