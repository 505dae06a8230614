"""Tier 3: agents.runtime.comfyui_client and agents.runtime.runner against the real ComfyUI test server.

The locked template runs with RANDOM-WEIGHT STAND-IN models (cli.template_run.swap_in_standins as the
prepare hook): the images prove the plan reaches the graph and the files come back, not image quality.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from agents.measure.imaging import load_image
from agents.planning.animation_director import plan_violations
from agents.planning.plan_types import Plan
from agents.runtime.comfyui_client import (
    ComfyClient,
    ComfyClientError,
    Interrupted,
    PromptRejected,
    RunTimeout,
    UnsafeFilename,
)
from agents.runtime.run_log import RunLog
from agents.runtime.runner import run_pair
from cli.run_cmd import standin_prepare
from host.server import txt2img_prompt

REPO = Path(__file__).resolve().parents[2]
SKETCH = REPO / "tests" / "fixtures" / "sketches" / "human_line.png"
REFERENCE = REPO / "tests" / "fixtures" / "references" / "madoka_lineart.png"


@pytest.fixture()
def client(comfy_server):
    with ComfyClient(comfy_server.url, timeout=30) as c:
        yield c


@pytest.fixture()
def standins(comfy_server):
    return standin_prepare(comfy_server.checkpoint, comfy_server.controlnet)


def _seed(workflow: dict) -> dict:
    # a fresh seed per test run, so the server's cache cannot answer for the samplers
    seed = time.time_ns() % 2**31
    for node in workflow.values():
        if node["class_type"] == "KSampler":
            node["inputs"]["seed"] = seed
    return workflow


def test_run_pair_plans_runs_downloads_judges_and_logs(client, standins, tmp_path):
    events: list[dict] = []
    with RunLog(tmp_path / "runs.sqlite3") as log:
        result = run_pair(client, sketch=SKETCH, reference=REFERENCE, out_dir=tmp_path / "out", log=log,
                          prepare=lambda wf: _seed(standins(wf)), progress=events.append, batch_id="t1",
                          timeout=300)
        rows = log.runs()
        done = log.done_pairs("t1")
    first = result.attempts[0]
    assert first["label"] == "attempt 1"
    assert set(first["images"]) == {"stage1", "final"}
    for stage, path in first["images"].items():
        assert path.parent == tmp_path / "out" / "attempt-1", stage
        assert load_image(path).shape[:2] == (64, 64)  # the stand-in size: the server's own output
    # one retry exactly when the first verdict failed, never more
    assert len(result.attempts) == (1 if first["verdict"]["passed"] else 2)
    assert result.final_passed == result.attempts[-1]["verdict"]["passed"]
    assert [r["id"] for r in rows] == result.run_ids
    row = rows[0]
    assert (row["status"], row["stage"]) == ("done", "judging")
    plan = Plan.from_dict(row["plan"])
    sent = row["workflow"]
    # the plan's values and prompts reached the graph that was sent; the images were uploaded ones
    assert sent["5"]["inputs"]["cfg"] == plan.cfg1 and sent["55"]["inputs"]["denoise"] == plan.denoise2
    assert sent["2"]["inputs"]["text"] == plan.prompts["ks1_positive"]
    assert sent["10"]["inputs"]["image"] != "m4_sketch.png" and sent["11"]["inputs"]["image"] != "m4_reference.png"
    assert set(row["timings"]) >= {"planning_s", "running_s", "downloading_s", "judging_s"}
    assert row["metrics"]["line_quality"].keys() >= {"broken", "dotted", "stray"}
    assert done == {RunLog.pair_key(SKETCH, REFERENCE)}
    # progress named both samplers and reported their steps
    started = {e["node"] for e in events if e["type"] == "executing"}
    assert {"5", "55"} <= started
    assert any(e["type"] == "progress" and e["node"] == "55" and e["class_type"] == "KSampler" for e in events)


def test_forced_retry_keeps_both_attempts_and_only_lowers(client, standins, tmp_path):
    with RunLog(tmp_path / "runs.sqlite3") as log:
        result = run_pair(client, sketch=SKETCH, reference=REFERENCE, out_dir=tmp_path / "out", log=log,
                          prepare=lambda wf: _seed(standins(wf)), force_retry=True, timeout=300)
        rows = log.runs()
    assert [a["label"] for a in result.attempts] == ["attempt 1", "retry"]
    assert len(result.run_ids) == 2 and [r["attempt"] for r in rows] == [1, 2]
    assert rows[1]["parent_run"] == rows[0]["id"]
    assert [r["status"] for r in rows] == ["done", "done"] and rows[0]["accepted"] is False
    a1, a2 = (a["images"]["final"] for a in result.attempts)
    assert a1.parent.name == "attempt-1" and a2.parent.name == "retry" and a1.is_file() and a2.is_file()
    first, retry = (Plan.from_dict(a["plan"]) for a in result.attempts)
    assert retry.is_retry and not first.is_retry
    assert plan_violations(retry) == []
    assert retry.cfg2 <= first.cfg2 and retry.ip2_weight <= first.ip2_weight and retry.denoise2 <= first.denoise2
    assert (retry.cfg2, retry.ip2_weight, retry.denoise2) != (first.cfg2, first.ip2_weight, first.denoise2)
    # the retry's values are the ones the server ran
    assert rows[1]["workflow"]["55"]["inputs"]["cfg"] == retry.cfg2
    assert rows[1]["workflow"]["105"]["inputs"]["weight"] == retry.ip2_weight
    assert rows[1]["diagnostics"]["retry"]["reason"]


def test_plan_on_server_wires_the_agents_in_and_logs_their_plan(client, standins, tmp_path):
    """The first attempt plans inside the graph: driven inputs are links from M4 Plan Unpack, and the plan
    the server's agents made (read back from /history) is logged and is what the retry lowers."""
    from agents.policy import default_policy

    PLANNING_NODES = default_policy().template_contract.planning

    with RunLog(tmp_path / "runs.sqlite3") as log:
        result = run_pair(client, sketch=SKETCH, reference=REFERENCE, out_dir=tmp_path / "out", log=log,
                          prepare=lambda wf: _seed(standins(wf)), force_retry=True, timeout=300,
                          plan_on_server=True, tags="1boy, solo")
        rows = log.runs()
    sent = rows[0]["workflow"]
    unpack = PLANNING_NODES["unpack"]
    for node_id, driver in default_policy().nodes.items():
        for input_name in driver.drives:
            assert sent[node_id]["inputs"][input_name][0] == unpack, (node_id, input_name)
    first, retry = (Plan.from_dict(a["plan"]) for a in result.attempts)
    assert Plan.from_dict(rows[0]["plan"]) == first
    assert plan_violations(first) == [] and plan_violations(retry) == []
    assert first.prompts["ks1_positive"].startswith("1boy")
    assert rows[0]["metrics"]["analysis"]["object_count"] >= 1 and rows[0]["metrics"]["reference"]["present"]
    assert "planning_s" not in rows[0]["timings"]  # nothing was analysed in this process
    # the retry goes back to literal values, lowered from the server's plan
    assert rows[1]["workflow"]["55"]["inputs"]["cfg"] == retry.cfg2 <= first.cfg2
    assert retry.denoise2 <= first.denoise2 and retry.ip2_weight <= first.ip2_weight
    assert all(a["images"]["final"].is_file() for a in result.attempts)


def test_a_rejected_prompt_names_the_node_and_leaves_the_row_incomplete(client, standins, tmp_path):
    def broken(workflow: dict) -> dict:
        wf = standins(workflow)
        wf["4"]["inputs"]["ckpt_name"] = "no_such_model.safetensors"
        return wf

    with RunLog(tmp_path / "runs.sqlite3") as log:
        with pytest.raises(PromptRejected) as info:
            run_pair(client, sketch=SKETCH, reference=REFERENCE, out_dir=tmp_path / "out", log=log, prepare=broken)
        row = log.runs()[0]
        assert log.done_pairs() == set()
    assert "4" in info.value.node_errors
    assert "node 4 (CheckpointLoaderSimple)" in str(info.value)
    assert (row["status"], row["stage"]) == ("incomplete", "running")
    assert "PromptRejected" in row["error"]
    assert row["workflow"]["4"]["inputs"]["ckpt_name"] == "no_such_model.safetensors"


def test_client_basics_against_the_server(client, comfy_server, tmp_path):
    assert "KSampler" in client.object_info()
    assert client.queue_remaining() >= 0
    prompt = txt2img_prompt(comfy_server.checkpoint, seed=time.time_ns() % 2**31, prefix="m4_client_basic")
    prompt_id = client.submit(prompt)
    entry = client.wait(prompt_id, timeout=120)
    assert entry["status"]["status_str"] == "success"
    # a wait on a prompt that already finished (a resumed batch) answers from /history at once
    assert client.wait(prompt_id, timeout=5)["outputs"] == entry["outputs"]
    files = client.download_outputs(entry, tmp_path / "dl", node_ids=["9"])
    assert len(files) == 1 and files[0].parent == tmp_path / "dl"
    pixels = load_image(files[0])
    assert pixels.shape[:2] == (64, 64) and np.isfinite(pixels.astype(float)).all()
    client.interrupt()  # nothing runs: must simply be accepted


@pytest.mark.parametrize(("field", "value"), [
    ("filename", "../../evil.png"), ("filename", "/tmp/evil.png"), ("filename", "..\\..\\evil.png"),
    ("filename", "ev\x00il.png"), ("subfolder", "../../.."), ("subfolder", "/etc"), ("type", "../output"),
])
def test_path_traversal_in_a_history_entry_is_refused(client, comfy_server, tmp_path, field, value):
    entry = comfy_server.run(txt2img_prompt(comfy_server.checkpoint, seed=7, prefix="m4_client_crafted"))
    crafted = {**entry, "outputs": {"9": {"images": [dict(entry["outputs"]["9"]["images"][0], **{field: value})]}}}
    dest = tmp_path / "a" / "b" / "dest"
    with pytest.raises(UnsafeFilename) as info:
        client.download_outputs(crafted, dest)
    assert isinstance(info.value, ComfyClientError) and "node 9" in str(info.value)
    assert list(dest.iterdir()) == []
    assert not list(tmp_path.rglob("evil.png"))


def test_a_run_past_its_timeout_is_cancelled_on_the_server(client, comfy_server):
    # 400 sampler steps take far longer than the half-second limit on this CPU server
    prompt = txt2img_prompt(comfy_server.checkpoint, steps=400, seed=time.time_ns() % 2**31, prefix="m4_client_slow")
    ids: list[str] = []
    real_submit = client.submit

    def recording(graph: dict, **kwargs) -> str:
        ids.append(real_submit(graph, **kwargs))
        return ids[-1]

    client.submit = recording
    started = time.monotonic()
    with pytest.raises(RunTimeout, match="did not finish"):
        client.run(prompt, timeout=0.5)
    assert time.monotonic() - started < 15
    [prompt_id] = ids  # the one prompt this client submitted
    # the client cancelled it: the server ends it as interrupted instead of running 400 steps
    with pytest.raises(Interrupted) as info:
        client.wait(prompt_id, timeout=60)
    assert time.monotonic() - started < 60
    assert info.value.node_id == "3" and "interrupted" in str(info.value)
    deadline = time.monotonic() + 30
    while client.queue_remaining() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert client.queue_remaining() == 0
    assert client._prompts == {}  # a graph is kept only while its prompt is followed


# --- the websocket kept between prompts --------------------------------------------------------

@pytest.fixture()
def connects(monkeypatch):
    """Counts the websocket connections the client opens (the real ones, passed through)."""
    import agents.runtime.comfyui_client as cc

    opened: list[object] = []
    real = cc.websocket.create_connection

    def counting(*args, **kwargs):
        ws = real(*args, **kwargs)
        opened.append(ws)
        return ws

    monkeypatch.setattr(cc.websocket, "create_connection", counting)
    return opened


def _progress_run(client: ComfyClient, checkpoint: str, seed: int) -> list[dict]:
    steps: list[dict] = []
    entry = client.run(txt2img_prompt(checkpoint, steps=2, seed=seed, prefix="m4_kept_ws"), timeout=120,
                       progress=steps.append)
    assert entry["outputs"]["9"]["images"]
    return steps


def test_one_websocket_serves_the_prompts_of_a_client(comfy_server, connects):
    seed = time.time_ns() % 2**31
    with ComfyClient(comfy_server.url, timeout=30) as client:
        for i in range(3):
            steps = _progress_run(client, comfy_server.checkpoint, seed + i)
            assert any(s["type"] == "progress" for s in steps)  # followed on the socket, not by polling
    assert len(connects) == 1
    assert not connects[0].connected  # closed with the client


def test_a_kept_websocket_that_went_stale_is_replaced_and_still_reports_progress(comfy_server, connects):
    seed = time.time_ns() % 2**31
    with ComfyClient(comfy_server.url, timeout=30) as client:
        _progress_run(client, comfy_server.checkpoint, seed)
        connects[0].sock.shutdown(2)  # the connection dies between prompts; the client has not noticed
        steps = _progress_run(client, comfy_server.checkpoint, seed + 1)
    assert len(connects) == 2
    assert any(s["type"] == "progress" for s in steps)


def test_two_threads_running_on_one_client_each_get_a_websocket(comfy_server, connects):
    import threading
    from concurrent.futures import ThreadPoolExecutor

    seed = time.time_ns() % 2**31
    second_reported = threading.Event()
    got: dict[str, list[dict]] = {"first": [], "second": []}

    def first(step: dict) -> None:
        got["first"].append(step)
        if step["type"] == "progress":  # hold the kept socket until the second prompt reports progress
            second_reported.wait(120)

    def second(step: dict) -> None:
        got["second"].append(step)
        if step["type"] == "progress":
            second_reported.set()

    def run(seed_: int, callback) -> dict:
        return client.run(txt2img_prompt(comfy_server.checkpoint, steps=2, seed=seed_, prefix="m4_two"),
                          timeout=240, progress=callback)

    with ComfyClient(comfy_server.url, timeout=30) as client, ThreadPoolExecutor(2) as pool:
        a = pool.submit(run, seed, first)
        while not got["first"]:  # the first thread owns the kept socket before the second starts
            time.sleep(0.01)
        b = pool.submit(run, seed + 1, second)
        entries = [a.result(timeout=300), b.result(timeout=300)]
    assert second_reported.is_set()  # the second prompt's messages reached its own socket
    assert all(e["outputs"]["9"]["images"] for e in entries)
    assert any(s["type"] == "progress" for s in got["first"])
    assert len(connects) == 2


def test_upload_input_is_content_addressed_sent_once_and_spares_same_named_files(client, comfy_server, tmp_path):
    import re
    import shutil

    src = tmp_path / "my sketch.png"
    shutil.copyfile(SKETCH, src)
    inputs = comfy_server.base_dir / "input"
    users_own = inputs / "my sketch.png"  # a file of the user's with the same name: never touched
    users_own.write_bytes(b"the user's own file")
    posts: list[str] = []
    real_post = client._post_image

    def counting(name, payload, **kwargs):
        posts.append(name)
        return real_post(name, payload, **kwargs)

    client._post_image = counting
    name = client.upload_input(src)
    assert re.fullmatch(r"m4/my_sketch-[0-9a-f]{16}\.png", name)
    on_server = inputs / name
    assert on_server.read_bytes() == src.read_bytes()
    stamp = on_server.stat().st_mtime_ns
    assert client.upload_input(src) == name and len(posts) == 1  # found by HEAD, not sent again
    assert on_server.stat().st_mtime_ns == stamp
    assert users_own.read_bytes() == b"the user's own file"

    shutil.copyfile(REFERENCE, src)  # same local name, new drawing: a new server name
    other = client.upload_input(src)
    assert other != name and len(posts) == 2 and (inputs / other).read_bytes() == src.read_bytes()

    on_server.unlink()  # removed on the server: sent again
    assert not client.input_exists(name.split("/")[1], "m4")
    shutil.copyfile(SKETCH, src)
    assert client.upload_input(src) == name and len(posts) == 3 and on_server.is_file()
