"""Tier 4: a run queued from the page (the M4 preset's graph with M4 Run Logger, loaded into the canvas, on the
stand-in models) and a `./m4 batch` run on the same server land in ONE run log in its user folder, and both are
rated with `./m4 rate`. The rest of the loop (calibrate, the next plan) is the server tier's
test_calibration_plumbing_server.py."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

from agents.runtime.run_log import RunLog
from cli import batch
from cli.rate_cmd import main as rate_main
from host.browser import open_comfy, unexpected_console_errors
from host.canvas_runs import canvas_run_graph

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def _ids(log_path: Path) -> set[int]:
    if not log_path.is_file():
        return set()
    with RunLog(log_path) as log:
        return {int(r["id"]) for r in log.runs()}


def test_page_queued_and_batch_runs_share_one_log_and_are_rated(comfy_server, browser_page, tmp_path: Path,
                                                                 monkeypatch, capsys) -> None:
    monkeypatch.delenv("M4_RUN_LOG_OFF", raising=False)
    log_path = RunLog.default_path(comfy_server.base_dir / "user")  # where M4 Run Logger writes on this server
    before = _ids(log_path)
    # From the page: the graph loaded into the canvas and queued as a user queues it.
    graph, logger = canvas_run_graph(comfy_server.checkpoint, comfy_server.controlnet,
                                     comfy_server.upload_image(FIXTURES / "sketches" / "user_3.png"),
                                     comfy_server.upload_image(FIXTURES / "references" / "madoka.jpg"),
                                     seed=time.time_ns() % 2**31)
    page = browser_page
    open_comfy(page, comfy_server.url)
    page.evaluate("async ([p]) => { await app.loadApiJson(p, 'm4_calibration_canvas'); }", [graph])
    page.wait_for_function("(n) => app.graph._nodes.length === n", arg=len(graph))
    on_page = page.evaluate("() => String(app.graph._nodes.find(n => n.type === 'M4RunLogger').id)")
    assert on_page == logger  # loadApiJson kept the graph's node ids
    page.evaluate("async () => { await app.queuePrompt(0, 1); }")
    page.wait_for_function(  # the logger's report comes back to its node on the page
        "(id) => (app.nodeOutputs?.[id]?.text ?? []).some(t => String(t).includes('logged'))",
        arg=logger, timeout=240_000)
    text = page.evaluate("(id) => String(app.nodeOutputs[id].text[0])", logger)
    canvas_id = int(text.split()[1])
    # ... and is drawn on it: the run id the panel shows is the one logged.
    page.wait_for_function("(id) => Array.isArray(app.graph.getNodeById(Number(id))?.m4Panel)", arg=logger)
    shown = page.evaluate("(id) => app.graph.getNodeById(Number(id)).m4Element.textContent", logger)
    assert "Run logged" in shown and f"run_id{canvas_id}" in shown.replace(" ", ""), shown
    # From the command line: one pair into the same file.
    listing = tmp_path / "pairs.csv"
    listing.write_text(f"sketch,reference\n{FIXTURES / 'sketches' / 'house_line.png'},"
                       f"{FIXTURES / 'references' / 'saber.png'}\n")
    assert batch.main([str(listing), "--server", comfy_server.url, "--standins", "--no-report",
                       "--log", str(log_path), "--out", str(tmp_path / "batch")]) == 0
    new = _ids(log_path) - before
    with RunLog(log_path) as log:
        rows = [log.get(i) for i in sorted(new)]
    by_source = Counter("canvas" if r["server"] == "canvas" else "batch" for r in rows)
    assert by_source["canvas"] == 1 and by_source["batch"] >= 1, by_source
    assert canvas_id in new and all(r["status"] == "done" for r in rows)
    canvas_row = next(r for r in rows if r["id"] == canvas_id)
    assert canvas_row["plan"]["case"] and canvas_row["verdict"] is not None
    assert canvas_row["metrics"]["analysis"]["image_name"]
    for i, row in enumerate(rows):
        assert rate_main([str(row["id"]), "good" if i % 2 else "bad", "--log", str(log_path)]) == 0
    assert "rated" in capsys.readouterr().out
    with RunLog(log_path) as log:
        ratings = log.ratings()
    assert {r["id"] for r in rows} <= set(ratings)
    assert unexpected_console_errors(page) == []
