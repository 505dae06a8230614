"""Calibration end to end on a real ComfyUI server: runs from `./m4 batch` and runs queued as the canvas queues
them (the locked template with the M4 agents planning in the graph, plus M4 Run Logger and M4 Rate Run) land
in ONE run log in the server's user folder; they are rated (`./m4 rate` and the M4 Rate Run node);
`./m4 calibrate --min-runs 10` writes the overlay beside that log; the next `./m4 plan` and the next canvas
plan (the Director node reads the user folder's overlay) show it in `diagnostics.policy_overlay`.

RANDOM-WEIGHT STAND-IN MODELS at 64x64 and 3 steps: the images are noise and the outcomes are the ratings
this test gives, so it proves the plumbing, not what calibration learns (bench/bench_calibration.py does).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from agents.policy.overlay import read_overlay
from agents.runtime.run_log import RunLog
from cli import batch
from cli.calibrate_cmd import main as calibrate_main
from cli.plan_cmd import main as plan_main
from cli.rate_cmd import main as rate_main
from host.canvas_runs import canvas_run_graph

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"
SKETCHES = [FIXTURES / "sketches" / n for n in ("house_line.png", "bag_scribble.png", "human_line.png",
                                                 "user_1.png", "user_3.png")]
REFERENCES = [FIXTURES / "references" / n for n in ("saber.png", "madoka_lineart.png")]
MIN_RUNS = 10  # the smallest --min-runs ./m4 calibrate accepts (and 5 good + 5 bad, calibration.toml)


@pytest.fixture(scope="module")
def calibration_server(tmp_path_factory: pytest.TempPathFactory):
    """A server of its own: its user folder's run log holds this test's runs and nothing else."""
    from host.server import start_server

    srv = start_server(tmp_path_factory.mktemp("comfy-calibration"))
    yield srv
    srv.stop()


def _queue_canvas(srv: Any, sketch: Path, reference: Path, seed: int, rating: str | None = None) -> int:
    """Queue the canvas graph over HTTP (the frontend posts the same API graph); returns the logged run id."""
    graph, logger = canvas_run_graph(srv.checkpoint, srv.controlnet, srv.upload_image(sketch),
                                     srv.upload_image(reference), seed, rating)
    entry = srv.run(graph, timeout=300)
    assert entry["status"]["status_str"] == "success", entry["status"]
    logged = entry["outputs"][logger]["text"][0]
    assert "logged" in logged, logged
    return int(logged.split()[1])


def test_batch_and_canvas_runs_calibrate_into_the_next_plan(calibration_server, tmp_path: Path, monkeypatch,
                                                           capsys) -> None:
    srv = calibration_server
    for env in ("M4_POLICY_OVERLAY", "M4_RUN_LOG", "M4_RUN_LOG_OFF"):
        monkeypatch.delenv(env, raising=False)
    log_path = RunLog.default_path(srv.base_dir / "user")  # where M4 Run Logger writes on this server

    # 1. ./m4 batch into the server's user-folder log.
    pairs = [(SKETCHES[i], REFERENCES[i % 2]) for i in range(4)]
    listing = tmp_path / "pairs.csv"
    listing.write_text("sketch,reference\n" + "".join(f"{s},{r}\n" for s, r in pairs))
    assert batch.main([str(listing), "--server", srv.url, "--standins", "--per-server", "1", "--no-report",
                       "--log", str(log_path), "--out", str(tmp_path / "batch")]) == 0
    assert "4 done" in capsys.readouterr().out
    with RunLog(log_path) as log:
        batch_rows = log.runs()
    assert {r["server"] for r in batch_rows} == {srv.url}
    assert Counter(r["attempt"] for r in batch_rows)[1] == len(pairs)

    # 2. Canvas runs on the same server, into the same file; the first is rated by M4 Rate Run in its graph.
    canvas_needed = max(2, MIN_RUNS - len(batch_rows))
    canvas_ids = [_queue_canvas(srv, SKETCHES[i % len(SKETCHES)], REFERENCES[(i + 1) % 2], seed=100 + i,
                                rating="good" if i == 0 else None) for i in range(canvas_needed)]
    with RunLog(log_path) as log:
        rows = log.runs()
        by_source = Counter("canvas" if r["server"] == "canvas" else "batch" for r in rows)
        assert by_source == Counter(batch=len(batch_rows), canvas=canvas_needed), by_source
        assert sorted(r["id"] for r in rows if r["server"] == "canvas") == sorted(canvas_ids)
        assert all(r["status"] == "done" for r in rows)
        canvas_first = log.get(canvas_ids[0])
        assert canvas_first["plan"]["case"] and canvas_first["verdict"] is not None
        assert "policy_overlay" not in (canvas_first["diagnostics"] or {})  # no overlay yet
        node_rating = log.ratings()
        assert set(node_rating) == {canvas_ids[0]} and node_rating[canvas_ids[0]]["source"] == "canvas"
        assert node_rating[canvas_ids[0]]["rating"] == "good"

    # 3. ./m4 rate every other run: alternately bad and good, so both outcomes have at least 5 runs.
    others = [r["id"] for r in rows if r["id"] != canvas_ids[0]]
    given = {canvas_ids[0]: "good"}
    for i, run_id in enumerate(others):
        given[run_id] = "bad" if i % 2 == 0 else "good"
        assert rate_main([str(run_id), given[run_id], "--log", str(log_path), "--note", "plumbing test"]) == 0
    assert rate_main(["99999", "good", "--log", str(log_path)]) == 2  # an unknown run is refused
    with RunLog(log_path) as log:
        ratings = log.ratings()
    assert {k: v["rating"] for k, v in ratings.items()} == given
    assert Counter(v["source"] for v in ratings.values()) == Counter(canvas=1, cli=len(others))
    assert min(Counter(given.values()).values()) >= 5

    # 4. ./m4 calibrate at the smallest run count it accepts writes the overlay beside the log.
    capsys.readouterr()
    assert calibrate_main(["--log", str(log_path), "--min-runs", str(MIN_RUNS)]) == 0
    out = capsys.readouterr().out
    overlay_path = log_path.parent / "m4_policy_overlay.toml"
    assert overlay_path.is_file(), out
    from agents.policy import raw_default_policy

    overlay = read_overlay(overlay_path, raw_default_policy())
    assert overlay.provenance["run_count"] == len(rows)
    assert overlay.provenance["outcome_source"] == f"{len(rows)} rated, 0 by the automatic verdict"
    assert f"runs used: {len(rows)} of {len(rows)}" in out

    # 5. The next ./m4 plan (the overlay found beside the log) says it planned with it ...
    assert plan_main(["--sketch", str(SKETCHES[0]), "--reference", str(REFERENCES[0]), "--log", str(log_path),
                      "--out", str(tmp_path / "plan")]) == 0
    planned = json.loads((tmp_path / "plan" / SKETCHES[0].stem / "plan.json").read_text())
    note = planned["plan"]["diagnostics"]["policy_overlay"]
    assert note["applied"] is True and Path(note["path"]) == overlay_path
    assert note["run_count"] == len(rows) and note["moved"] == {m.key: m.value for m in overlay.moved}
    # ... and so does the next canvas run: the Director node reads the overlay from the user folder.
    next_id = _queue_canvas(srv, SKETCHES[1], REFERENCES[0], seed=999)
    with RunLog(log_path) as log:
        node_note = log.get(next_id)["diagnostics"]["policy_overlay"]
    assert node_note["applied"] is True and node_note["run_count"] == len(rows)
