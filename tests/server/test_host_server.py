"""Tier 3: the real ComfyUI server the host starts, with this pack linked in and the stand-in checkpoint."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import requests

from cli.local_comfy import ComfyStartError, ExecutionFailed, LocalComfy, PromptRejected, safe_filename
from cli.standin_checkpoint import GENERATOR_VERSION, METADATA_TAG, is_valid_checkpoint
from host.server import PACK_MODULE, pack_node_ids, txt2img_prompt

REPO = Path(__file__).resolve().parents[2]


def test_server_answers_with_core_nodes_and_the_checkpoint(comfy_server, record_property):
    record_property("server_timings", comfy_server.timings)
    info = comfy_server.object_info()
    assert {"KSampler", "CheckpointLoaderSimple", "SaveImage"} <= info.keys()
    # The generated checkpoint is the one offered by the loader's combo.
    choices = info["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"][0]
    assert comfy_server.checkpoint in choices
    assert (comfy_server.base_dir / "custom_nodes" / "m4_director").resolve() == REPO


def test_pack_nodes_are_registered_under_the_pack_module(comfy_server):
    info = comfy_server.object_info()
    ours = pack_node_ids(info)
    m4_ids = [k for k in ours if k.startswith("M4")]
    assert m4_ids, f"no M4 node from {PACK_MODULE} in /object_info; server log:\n{comfy_server.log_tail()}"
    # Every node the pack registers carries the M4 prefix, and no other module claims an M4 id.
    assert ours == m4_ids
    assert all(info[k]["python_module"] == PACK_MODULE for k in info if k.startswith("M4"))
    for node_id in m4_ids:
        assert info[node_id]["category"].startswith("M4"), node_id


def test_web_extension_files_are_listed_and_served(comfy_server):
    listed = comfy_server.get_json("/extensions")
    ours = sorted(u for u in listed if u.startswith("/extensions/m4_director/"))
    expected = sorted("/extensions/m4_director/" + p.relative_to(REPO / "web").as_posix()
                      for p in (REPO / "web").rglob("*.js"))
    assert ours == expected
    for url in ours:
        resp = requests.get(comfy_server.url + url, timeout=30)
        assert resp.status_code == 200
        assert resp.content == (REPO / "web" / url.removeprefix("/extensions/m4_director/")).read_bytes()


@pytest.mark.parametrize(("width", "height"), [(64, 64), (96, 64)])
def test_txt2img_runs_and_the_saved_image_comes_back_through_view(comfy_server, width, height, tmp_path):
    prefix = f"m4_host_{width}x{height}"
    entry = comfy_server.run(txt2img_prompt(comfy_server.checkpoint, width=width, height=height, prefix=prefix))
    assert entry["status"]["status_str"] == "success"
    assert entry["status"]["completed"] is True
    images = entry["outputs"]["9"]["images"]
    assert len(images) == 1 and images[0]["type"] == "output"
    assert images[0]["filename"].startswith(prefix)
    data = comfy_server.view(images[0]["filename"], images[0]["subfolder"], "output")
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert decoded is not None, "/view did not return a decodable image"
    assert decoded.shape[:2] == (height, width)
    # The bytes served are the file SaveImage wrote into this server's own output folder.
    on_disk = comfy_server.base_dir / "output" / images[0]["subfolder"] / images[0]["filename"]
    assert on_disk.read_bytes() == data
    # The launcher's download helper writes the same bytes under the server's (sanitised) name.
    (local,) = comfy_server.download_images(entry, tmp_path)
    assert local.parent == tmp_path and local.name == images[0]["filename"]
    assert local.read_bytes() == data


def test_uploaded_image_round_trips_through_load_image(comfy_server, fixture_data, tmp_path):
    source = next(p for p in sorted(fixture_data.rglob("*.png")) if p.stat().st_size < 5_000_000)
    name = comfy_server.upload_image(source)
    prompt = {
        "1": {"class_type": "LoadImage", "inputs": {"image": name}},
        "2": {"class_type": "SaveImage", "inputs": {"filename_prefix": "m4_host_roundtrip", "images": ["1", 0]}},
    }
    entry = comfy_server.run(prompt)
    saved = entry["outputs"]["2"]["images"][0]
    got = cv2.imdecode(np.frombuffer(comfy_server.view(saved["filename"], saved["subfolder"]), np.uint8),
                       cv2.IMREAD_COLOR)
    want = cv2.imread(str(source), cv2.IMREAD_COLOR)
    assert got.shape == want.shape
    # LoadImage drops alpha and SaveImage re-encodes 8-bit RGB: pixels match exactly for an RGB png.
    assert np.abs(got.astype(int) - want.astype(int)).max() <= 1


def test_invalid_value_is_rejected_naming_the_node(comfy_server):
    prompt = txt2img_prompt(comfy_server.checkpoint)
    prompt["3"]["inputs"]["sampler_name"] = "no_such_sampler"
    with pytest.raises(PromptRejected) as info:
        comfy_server.run(prompt)
    assert set(info.value.node_errors) == {"3"}
    assert "node 3 (KSampler)" in str(info.value)
    assert "sampler_name" in str(info.value)


def test_unknown_node_type_is_rejected_with_its_name(comfy_server):
    prompt = txt2img_prompt(comfy_server.checkpoint)
    prompt["10"] = {"class_type": "M4NoSuchNode", "inputs": {"image": ["8", 0]}}
    with pytest.raises(PromptRejected, match="M4NoSuchNode"):
        comfy_server.run(prompt)


def test_runtime_failure_names_the_failing_node(comfy_server):
    # Validation passes (the file is listed), loading it fails inside the executor.
    broken = comfy_server.base_dir / "models" / "checkpoints" / "m4_broken.safetensors"
    broken.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00not json")
    prompt = txt2img_prompt("m4_broken.safetensors")
    with pytest.raises(ExecutionFailed) as info:
        comfy_server.run(prompt)
    assert info.value.node_id == "4"
    assert info.value.node_type == "CheckpointLoaderSimple"
    assert "node 4 (CheckpointLoaderSimple)" in str(info.value)


def test_a_server_that_dies_at_start_fails_fast_with_its_log(tmp_path):
    started = time.monotonic()
    local = LocalComfy(tmp_path / "base", with_checkpoint=False, extra_args=("--no-such-flag",))
    with pytest.raises(ComfyStartError) as info:
        local.start()
    assert time.monotonic() - started < 60
    message = str(info.value)
    assert "exited with code 2" in message
    assert "--no-such-flag" in message  # argparse's complaint, from the log tail
    assert local._proc is None


@pytest.mark.parametrize(
    ("given", "expected"),
    [("ComfyUI_00001_.png", "ComfyUI_00001_.png"), ("../../etc/passwd", "passwd"), ("a\\..\\b.png", "b.png"),
     ("sub/..png", "_png"), ("x\x00y.png", "xy.png")],
)
def test_server_file_names_are_sanitised_before_touching_disk(given, expected):
    assert safe_filename(given) == expected


@pytest.mark.parametrize("given", ["", "..", "dir/", "/", " . "])
def test_unusable_server_file_names_are_refused(given):
    with pytest.raises(ValueError, match="unusable file name"):
        safe_filename(given)


def test_cached_checkpoint_is_recognised_and_a_truncated_copy_is_not(comfy_server, tmp_path):
    cached = (comfy_server.base_dir / "models" / "checkpoints" / comfy_server.checkpoint).resolve()
    assert is_valid_checkpoint(cached)
    truncated = tmp_path / "truncated.safetensors"
    with open(cached, "rb") as src:
        truncated.write_bytes(src.read(2_000_000))
    assert not is_valid_checkpoint(truncated)
    tensor = '"w":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}'
    tag = f'"__metadata__":{{"{METADATA_TAG}":"{GENERATOR_VERSION}"}},'
    for name, meta, valid in (("foreign", "", False), ("tagged", tag, True)):
        header = ("{" + meta + tensor + "}").encode()
        small = tmp_path / f"{name}.safetensors"
        small.write_bytes(len(header).to_bytes(8, "little") + header + b"\x00" * 4)
        assert is_valid_checkpoint(small) is valid, name


def test_progress_reports_each_node_and_each_sampler_step(comfy_server):
    events = []
    prompt = txt2img_prompt(comfy_server.checkpoint, steps=3, seed=time.time_ns() % 2**31, prefix="m4_host_progress")
    comfy_server._local.run(prompt, progress=events.append)
    started = [e["node"] for e in events if e["type"] in ("executing", "cached")]
    assert sorted(started) == sorted(prompt)  # every node reported once, run or reused
    steps = [(e["value"], e["max"]) for e in events if e["type"] == "progress" and e["node"] == "3"]
    assert steps == [(1, 3), (2, 3), (3, 3)]
    assert all(e["class_type"] == prompt[e["node"]]["class_type"] for e in events)


def test_run_falls_back_to_polling_history_without_the_websocket(comfy_server, monkeypatch):
    import cli.local_comfy as local_comfy

    def refuse(*args, **kwargs):
        raise ConnectionRefusedError("websocket disabled for this test")

    monkeypatch.setattr(local_comfy.websocket, "create_connection", refuse)
    entry = comfy_server.run(txt2img_prompt(comfy_server.checkpoint, seed=time.time_ns() % 2**31,
                                            prefix="m4_host_polling"))
    assert entry["status"]["status_str"] == "success"
    assert entry["outputs"]["9"]["images"][0]["filename"].startswith("m4_host_polling")
