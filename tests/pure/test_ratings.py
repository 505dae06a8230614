"""Tier 1: ratings in the run log (migration v3, newest rating wins) and `./m4 rate`."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from agents.runtime import run_log
from agents.runtime.run_log import RunLog, RunLogError

REPO = Path(__file__).resolve().parents[2]


def _one_run(tmp_path: Path) -> tuple[Path, int]:
    img = tmp_path / "s.png"
    img.write_bytes(b"\x89PNG not really")
    path = tmp_path / "log.sqlite3"
    with RunLog(path) as log:
        rid = log.start_run(sketch=img, reference=None, server="test")
        log.record(rid, accepted=False, verdict={"passed": False, "failures": ["fringe"]})
    return path, rid


def test_ratings_kept_apart_newest_wins(tmp_path: Path) -> None:
    path, rid = _one_run(tmp_path)
    with RunLog(path) as log:
        log.rate(rid, "bad", note="fringes")
        log.rate(rid, "good", note="on a second look")
        assert log.ratings()[rid]["rating"] == "good" and log.ratings(rid)[rid]["note"] == "on a second look"
        assert log.get(rid)["accepted"] is False  # the automatic verdict is untouched
        with pytest.raises(RunLogError, match="rating: expected"):
            log.rate(rid, "meh")
        with pytest.raises(RunLogError, match="no run 999"):
            log.rate(999, "good")


def test_v2_log_migrates_to_ratings(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path, isolation_level=None)
    run_log.migrate(db, target=2)
    db.close()
    with RunLog(path) as log:
        assert log.schema_version == run_log.SCHEMA_VERSION >= 3
        assert log.ratings() == {}


def _rate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cli", "rate", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=60)


def test_rate_command(tmp_path: Path) -> None:
    path, rid = _one_run(tmp_path)
    ok = _rate(str(rid), "good", "--note", "crisp", "--log", str(path))
    assert ok.returncode == 0, ok.stderr
    assert "rated good" in ok.stdout and "automatic verdict: fail" in ok.stdout
    missing = _rate("42", "bad", "--log", str(path))
    assert missing.returncode == 2 and len(missing.stderr.strip().splitlines()) == 1
    assert "no run 42" in missing.stderr
    nolog = _rate("1", "bad", "--log", str(tmp_path / "none.sqlite3"))
    assert nolog.returncode == 2 and "no run log" in nolog.stderr
    with RunLog(path) as log:
        assert log.ratings()[rid]["note"] == "crisp"
