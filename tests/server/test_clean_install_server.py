"""The pack on a clean install: a ComfyUI whose venv holds only ComfyUI's requirements and the pack's
requirements.txt (nothing from requirements-dev.txt), with every node of the pack run once.

A node that imports something only the test venv has (matplotlib was one) fails here, not on a user's
machine. The venv is built once by `scripts/bootstrap.sh --clean` (cached like the test venv).
"""

from __future__ import annotations

import json
import os
import subprocess
import wave
from pathlib import Path
from typing import Any

import pytest

from cli.local_comfy import ComfyError, LocalComfy
from cli.standin_checkpoint import cached_checkpoint
from host.tiny_open_clip import save_tiny_open_clip

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"
STANDINS = REPO / "tests" / "host" / "standins"


def _clean_python() -> str:
    given = os.environ.get("M4_CLEAN_PYTHON")
    if given:
        return given
    out = subprocess.run(["bash", str(REPO / "scripts" / "bootstrap.sh"), "--clean"], capture_output=True,
                         text=True, check=False, timeout=1800)
    if out.returncode != 0:
        pytest.fail(f"the clean-install venv could not be built: {out.stderr[-2000:]}", pytrace=False)
    return out.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def clean_server(tmp_path_factory: pytest.TempPathFactory):
    python = _clean_python()
    check = subprocess.run([python, "-c", "import importlib.util as u; print(u.find_spec('matplotlib') is None)"],
                           capture_output=True, text=True, check=True)
    assert check.stdout.strip() == "True", "the clean venv must not hold the dev-only packages"
    server = LocalComfy(tmp_path_factory.mktemp("clean-comfy"), checkpoint=cached_checkpoint(),
                        extra_custom_nodes={"m4_test_standins": STANDINS}, threads=1, python=python)
    try:
        server.start()
    except ComfyError as exc:
        pytest.fail(f"ComfyUI did not start from the clean venv: {exc}", pytrace=False)
    yield server
    server.stop()


def _complete(node_class: str, given: dict[str, Any], info: dict[str, Any]) -> dict[str, Any]:
    """The node with every required widget it was not given set to its default (from /object_info)."""
    inputs = dict(given)
    for name, spec in info[node_class]["input"].get("required", {}).items():
        if name in inputs:
            continue
        options = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
        if isinstance(spec[0], list):  # a combo: its default or first option
            inputs[name] = options.get("default", spec[0][0])
        elif "default" in options:
            inputs[name] = options["default"]
    return {"class_type": node_class, "inputs": inputs}


def _tone_wav(path: Path, seconds: float = 1.0, rate: int = 16000) -> Path:
    """A short 16-bit WAV with four clicks (the audio family's input), written with the standard library."""
    samples = bytearray()
    for i in range(int(seconds * rate)):
        value = 20000 if (i % (rate // 4)) < 40 else 0
        samples += int(value).to_bytes(2, "little", signed=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(bytes(samples))
    return path


def _every_node_graph(sketch: str, reference: str, checkpoint: str, info: dict[str, Any], audio: str = "",
                      clip_dir: str = "") -> dict[str, Any]:
    """One graph that runs each node of the pack (ids local to this graph)."""
    n = {
        "ckpt": ("CheckpointLoaderSimple", {"ckpt_name": checkpoint}),
        "sketch": ("LoadImage", {"image": sketch}),
        "ref": ("LoadImage", {"image": reference}),
        "analyst": ("M4VisualAnalyst", {"image": ["sketch", 0]}),
        "compare": ("M4ReferenceCompare", {"sketch": ["sketch", 0], "reference": ["ref", 0]}),
        "director": ("M4AnimationDirector", {"analysis": ["analyst", 0], "reference_report": ["compare", 0]}),
        "prompts": ("M4PromptEngineer", {"plan": ["director", 0], "analysis": ["analyst", 0]}),
        "unpack": ("M4PlanUnpack", {"plan": ["prompts", 0]}),
        "pos": ("CLIPTextEncode", {"text": ["unpack", 14], "clip": ["ckpt", 1]}),
        "neg": ("CLIPTextEncode", {"text": ["unpack", 15], "clip": ["ckpt", 1]}),
        "latent": ("EmptyLatentImage", {"width": 64, "height": 64, "batch_size": 1}),
        "patch": ("M4AdaptiveCFG", {"model": ["ckpt", 0]}),
        "ks": ("KSampler", {"model": ["patch", 0], "seed": 1, "steps": 3, "cfg": ["unpack", 1],
                            "sampler_name": "euler", "scheduler": "normal", "positive": ["pos", 0],
                            "negative": ["neg", 0], "latent_image": ["latent", 0], "denoise": 1.0}),
        "decode": ("VAEDecode", {"samples": ["ks", 0], "vae": ["ckpt", 2]}),
        "judge": ("M4LineQualityAnalyzer", {"image": ["decode", 0], "plan": ["prompts", 0]}),
        "logger": ("M4RunLogger", {"image": ["decode", 0], "plan": ["prompts", 0], "analysis": ["analyst", 0],
                                   "reference_report": ["compare", 0], "sketch": ["sketch", 0], "enabled": True}),
        "rate": ("M4RateRun", {"run_id": ["logger", 0], "rating": "good", "note": ""}),
        "guider": ("M4AdaptiveGuider", {"model": ["ckpt", 0], "positive": ["pos", 0], "negative": ["neg", 0]}),
        "stop": ("M4EarlyStopSampler", {}),
        "noise": ("RandomNoise", {"noise_seed": 1}),
        "sigmas": ("BasicScheduler", {"model": ["ckpt", 0], "scheduler": "normal", "steps": 3, "denoise": 1.0}),
        "custom": ("SamplerCustomAdvanced", {"noise": ["noise", 0], "guider": ["guider", 0], "sampler": ["stop", 0],
                                             "sigmas": ["sigmas", 0], "latent_image": ["latent", 0]}),
        "adaptive_ks": ("M4AdaptiveKSampler", {"model": ["ckpt", 0], "seed": 1, "steps": 3, "cfg": 5.0,
                                               "sampler_name": "euler", "scheduler": "normal",
                                               "positive": ["pos", 0], "negative": ["neg", 0],
                                               "latent_image": ["latent", 0], "denoise": 1.0}),
        "decode2": ("VAEDecode", {"samples": ["custom", 0], "vae": ["ckpt", 2]}),
        "decode3": ("VAEDecode", {"samples": ["adaptive_ks", 0], "vae": ["ckpt", 2]}),
        "save": ("PreviewImage", {"images": ["decode2", 0]}),
        "save2": ("PreviewImage", {"images": ["decode3", 0]}),
        # in-betweening: two keys -> imputer -> encode -> per-frame noise mask -> KSampler -> preview
        "keys": ("ImageBatch", {"image1": ["sketch", 0], "image2": ["ref", 0]}),
        "small_keys": ("ImageScale", {"image": ["keys", 0], "upscale_method": "area", "width": 128, "height": 128,
                                      "crop": "disabled"}),
        "imputer": ("M4KeyframeImputer", {"keyframes": ["small_keys", 0], "key_indices": "0,4", "length": 5,
                                          "line_quality": False}),
        "ib_latent": ("VAEEncode", {"pixels": ["imputer", 0], "vae": ["ckpt", 2]}),
        "ib_mask": ("M4InbetweenNoiseMask", {"latent": ["ib_latent", 0], "keep_mask": ["imputer", 1]}),
        "ib_ks": ("KSampler", {"model": ["ckpt", 0], "seed": 1, "steps": 2, "cfg": 5.0, "sampler_name": "euler",
                               "scheduler": "normal", "positive": ["pos", 0], "negative": ["neg", 0],
                               "latent_image": ["ib_mask", 0], "denoise": 0.35}),
        "ib_decode": ("VAEDecode", {"samples": ["ib_ks", 0], "vae": ["ckpt", 2]}),
        "ib_save": ("PreviewImage", {"images": ["ib_decode", 0]}),
        # audio patterns: LoadAudio (core, needs torchaudio's Python parts) -> features -> frames
        "audio": ("LoadAudio", {"audio": audio}),
        "features": ("M4AudioFeatures", {"audio": ["audio", 0], "fps": 10.0}),
        "cppn": ("M4CPPNFrames", {"features": ["features", 0], "width": 32, "height": 32}),
        "cppn_save": ("PreviewImage", {"images": ["cppn", 0]}),
        "guided": ("M4CLIPGuidedCPPN", {"features": ["features", 0], "open_clip_model_path": clip_dir,
                                        "prompt": "red spirals", "width": 32, "height": 32, "steps": 2,
                                        "optimise_size": 16}),
        "guided_save": ("PreviewImage", {"images": ["guided", 0]}),
    }
    return {k: _complete(cls, inputs, info) for k, (cls, inputs) in n.items()}


def test_every_pack_node_runs_on_a_clean_install(clean_server: LocalComfy, tmp_path: Path) -> None:
    info = clean_server.object_info()
    pack_ids = set(json.loads((REPO / "node_list.json").read_text()))
    missing = sorted(pack_ids - set(info))
    assert missing == [], f"nodes that did not load on the clean install: {missing}\n{clean_server.log_tail(40)}"
    graph = _every_node_graph(clean_server.upload_image(FIXTURES / "sketches" / "user_1.png"),
                              clean_server.upload_image(FIXTURES / "references" / "madoka_lineart.png"),
                              str(clean_server.checkpoint), info,
                              audio=clean_server.upload_image(_tone_wav(tmp_path / "m4_clean_clicks.wav")),
                              clip_dir=str(save_tiny_open_clip(tmp_path / "tiny_clip")))
    uncovered = sorted(pack_ids - {node["class_type"] for node in graph.values()})
    assert uncovered == [], f"add these nodes to the clean-install graph: {uncovered}"
    entry = clean_server.run(graph, timeout=300)
    ran = {k for k in entry.get("outputs", {})}
    assert entry["status"]["status_str"] == "success", entry["status"]
    assert {"analyst", "director", "prompts", "judge", "adaptive_ks", "imputer", "ib_save", "features",
            "cppn_save", "guided_save"} <= ran
