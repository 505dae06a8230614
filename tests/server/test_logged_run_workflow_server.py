"""The bundled M4_Example_Logged_Run workflow queued on the real server as the canvas queues it (UI format ->
API prompt, muted nodes left out) on the RANDOM-WEIGHT STAND-IN models at 64x64 and 3 steps: the run lands in
the server's user-folder run log with the final image's hash and the Line Quality verdict; M4 Rate Run starts
muted (nothing is rated unasked), and un-muted and queued again it rates that run without logging a new one."""

from __future__ import annotations

import copy
import hashlib
import io
import json
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

from agents.policy import default_policy
from agents.runtime.run_log import RunLog
from cli.template_run import swap_in_standins

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"
sys.path.insert(0, str(REPO / "scripts"))
import build_workflows  # noqa: E402

from host.ui_prompt import ui_to_api  # noqa: E402

WIDGETS = build_workflows.WIDGET_TYPES




def _prompt(wf: dict[str, Any], srv: Any, seed: int) -> dict[str, Any]:
    api = ui_to_api(wf, build_workflows.load_snapshot(), build_workflows.WIDGET_TYPES)
    api = swap_in_standins(api, checkpoint=srv.checkpoint, controlnet=srv.controlnet).workflow  # 64x64, 3 steps
    for node in api.values():
        if node["class_type"] == "KSampler":
            node["inputs"]["seed"] = seed  # fresh per test run: the server's cache answers nothing the first time
    return api


def _pixel_sha(png: bytes) -> str:
    """The hash M4 Run Logger gives an image, computed here from the saved file's pixels."""
    arr = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    digest = hashlib.sha256(str(arr.shape).encode())
    digest.update(np.ascontiguousarray(arr).tobytes())
    return digest.hexdigest()


def _ids(log_path: Path) -> set[int]:
    if not log_path.is_file():
        return set()
    with RunLog(log_path) as log:
        return {int(r["id"]) for r in log.runs()}


def test_logged_run_example_logs_the_run_and_rates_it_from_the_canvas(comfy_server, tmp_path: Path,
                                                                       monkeypatch) -> None:
    srv = comfy_server
    monkeypatch.delenv("M4_RUN_LOG_OFF", raising=False)
    for name, source in ((build_workflows.SKETCH, FIXTURES / "sketches" / "user_3.png"),
                         (build_workflows.REFERENCE, FIXTURES / "references" / "madoka.jpg")):
        cv2.imwrite(str(tmp_path / name), cv2.imread(str(source)))
        assert srv.upload_image(tmp_path / name) == name
    wf = json.loads((REPO / "workflows" / f"{build_workflows.LOGGED_RUN}.json").read_text(encoding="utf-8"))
    by_type = {n["type"]: n for n in wf["nodes"]}
    logger, rater = str(by_type["M4RunLogger"]["id"]), str(by_type["M4RateRun"]["id"])
    contract = default_policy().template_contract
    final_save, checker = contract.saves["final"], str(by_type["M4LineQualityAnalyzer"]["id"])
    log_path = RunLog.default_path(srv.base_dir / "user")  # where M4 Run Logger writes on this server
    before = _ids(log_path)
    seed = time.time_ns() % 2**31

    # 1. As dragged in: the rating node is muted, so the run is logged and nobody's verdict is invented.
    first = _prompt(wf, srv, seed)
    assert rater not in first and first[logger]["inputs"]["image"] == [contract.feeds["final_image"], 0]
    entry = srv.run(first, timeout=300)
    assert entry["status"]["status_str"] == "success", srv.log_tail()
    outputs = entry["outputs"]
    text = outputs[logger]["text"][0]
    assert text.startswith("run ") and " logged " in text, text
    run_id = int(text.split()[1])
    assert _ids(log_path) - before == {run_id}
    saved = outputs[final_save]["images"][0]
    final_sha = _pixel_sha(srv.view(saved["filename"], saved["subfolder"], saved["type"]))
    panel = outputs[checker]["m4_panel"][0]["data"]  # the Line Quality Analyzer's verdict in the same run
    with RunLog(log_path) as log:
        row = log.get(run_id)
        assert log.ratings(run_id) == {}
    assert row["server"] == "canvas" and row["status"] == "done"
    assert row["metrics"]["final_image_sha256"] == final_sha
    assert row["verdict"]["passed"] == panel["passed"] and row["verdict"]["failures"] == panel["failures"]
    assert bool(row["accepted"]) == panel["passed"]
    assert row["metrics"]["line_quality"] == panel["scores"][0]
    assert row["plan"]["case"] and row["prompts"]["ks1_positive"]
    assert row["metrics"]["analysis"]["image_name"]

    # 2. A person un-mutes M4 Rate Run, picks "bad" and queues again: the cached graph runs only the rating,
    #    which lands on the run just logged.
    rated = copy.deepcopy(wf)
    node = next(n for n in rated["nodes"] if str(n["id"]) == rater)
    node["mode"] = 0
    names = [i["name"] for i in build_workflows.load_snapshot()["M4RateRun"]["inputs"] if i["type"] in WIDGETS]
    node["widgets_values"][names.index("rating")] = "bad"
    node["widgets_values"][names.index("note")] = "doubled lines"
    second = _prompt(rated, srv, seed)
    assert second[rater]["inputs"]["run_id"] == [logger, 0]
    entry = srv.run(second, timeout=300)
    assert entry["status"]["status_str"] == "success", srv.log_tail()
    assert entry["outputs"][rater]["text"][0] == f"run {run_id} rated bad"
    assert _ids(log_path) - before == {run_id}  # no second run logged
    with RunLog(log_path) as log:
        rating = log.ratings(run_id)[run_id]
        assert log.get(run_id)["verdict"] == row["verdict"]  # the automatic verdict is kept apart
    assert (rating["rating"], rating["note"], rating["source"]) == ("bad", "doubled lines", "canvas")
