"""The bundled M4_Example_Inbetween workflow queued on the real server with the stand-in checkpoint:
keys -> imputer -> VAEEncode -> per-frame noise mask -> KSampler -> VAEDecode -> keys re-imposed ->
animated WEBP, whose key frames come out pixel-exact."""

from __future__ import annotations

import io
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from bench.inbetween_figures import figure_sequence

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))
import build_workflows  # noqa: E402

from host.ui_prompt import ui_to_api  # noqa: E402


def _write_key(folder: Path, name: str, frame: np.ndarray) -> Path:
    path = folder / name
    cv2.imwrite(str(path), np.round(frame * 255).astype(np.uint8))
    return path


def test_inbetween_example_runs_and_keeps_keys_exact(comfy_server, tmp_path: Path) -> None:
    wf = json.loads((REPO / "workflows" / "M4_Example_Inbetween.json").read_text(encoding="utf-8"))
    api = ui_to_api(wf, build_workflows.load_snapshot(), build_workflows.WIDGET_TYPES)
    seq = figure_sequence(9, 128, width=2)
    for name, frame in ((build_workflows.KEY_A, seq[0]), (build_workflows.KEY_B, seq[8])):
        assert comfy_server.upload_image(_write_key(tmp_path, name, frame)) == name
    by_type = {n["class_type"]: k for k, n in api.items() if n["class_type"] != "M4KeyframeImputer"}
    api[by_type["CheckpointLoaderSimple"]]["inputs"]["ckpt_name"] = comfy_server.checkpoint
    ks = api[by_type["KSampler"]]["inputs"]
    ks["seed"], ks["steps"] = time.time_ns() % 2**31, 3  # a fresh seed: no cached result
    assert ks["denoise"] <= 0.60  # the Director's stage-2 bound (policy hard_rules.denoise2_max)
    save = api[by_type["SaveAnimatedWEBP"]]["inputs"]
    save["lossless"], save["filename_prefix"] = True, f"m4_test/inbetween_{time.time_ns()}"
    entry = comfy_server.run(api, timeout=300)
    assert entry["status"]["status_str"] == "success", comfy_server.log_tail()
    outputs = entry["outputs"]
    imputers = [k for k, n in api.items() if n["class_type"] == "M4KeyframeImputer"]
    panels = [outputs[k]["m4_panel"][0] for k in imputers]
    assert {p["kind"] for p in panels} == {"inbetween"}
    assert {p["data"]["mode"] for p in panels} == {"line_aware", "external"}
    saved = outputs[by_type["SaveAnimatedWEBP"]]["images"][0]
    webp = Image.open(io.BytesIO(comfy_server.view(saved["filename"], saved["subfolder"], saved["type"])))
    frames = []
    for i in range(webp.n_frames):
        webp.seek(i)
        frames.append(np.asarray(webp.convert("RGB")))
    assert len(frames) == 9
    for idx, key in ((0, build_workflows.KEY_A), (8, build_workflows.KEY_B)):
        truth = cv2.cvtColor(cv2.imread(str(tmp_path / key)), cv2.COLOR_BGR2RGB)
        assert np.array_equal(frames[idx], truth), f"key frame {idx} changed"
    assert not np.array_equal(frames[4], frames[0])  # the middle frame is an in-between, refined
