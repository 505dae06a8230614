"""Adaptive CFG in a real ComfyUI server: the patch with the stock KSampler, and the guider +
the early-stop sampler with SamplerCustomAdvanced, POSTed as API workflows (64x64, few steps)."""

from __future__ import annotations

from host.server import txt2img_prompt

ADAPTIVE = {
    "schedule": "s_curve", "cfg_min": 1.0, "cfg_max": 12.0, "skip_below": 1.5, "quality_adjust": True,
    "agreement_cutoff": 0.0, "interval_sigma_lo": 0.28, "interval_sigma_hi": 5.42, "early_stop": False,
    "early_stop_tolerance": 0.02, "base_source": "sampler cfg",
}
NODES = ("M4AdaptiveCFG", "M4AdaptiveGuider", "M4EarlyStopSampler", "M4AdaptiveKSampler")


def test_nodes_registered_with_tooltips(comfy_server):
    info = comfy_server.object_info()
    for node in NODES:
        assert node in info, f"{node} missing from /object_info"
        assert info[node]["python_module"].startswith("custom_nodes.")
        for section in ("required", "optional"):
            for name, spec in info[node]["input"].get(section, {}).items():
                assert len(spec) > 1 and spec[1].get("tooltip"), f"{node}.{name} has no tooltip"


def test_patch_with_stock_ksampler(comfy_server):
    wf = txt2img_prompt(comfy_server.checkpoint, steps=6, prefix="m4_adaptive_patch")
    wf["20"] = {"class_type": "M4AdaptiveCFG", "inputs": {"model": ["4", 0], **ADAPTIVE}}
    wf["3"]["inputs"]["model"] = ["20", 0]
    entry = comfy_server.run(wf)
    assert entry["status"]["status_str"] == "success"
    assert entry["outputs"]["9"]["images"], "no image saved"


def test_guider_and_early_stop_sampler_with_sampler_custom_advanced(comfy_server):
    wf = txt2img_prompt(comfy_server.checkpoint, steps=6, prefix="m4_adaptive_guider")
    del wf["3"], wf["8"], wf["9"]
    wf.update({
        "30": {"class_type": "M4AdaptiveGuider", "inputs": {"model": ["4", 0], "positive": ["6", 0],
                                                           "negative": ["7", 0], "cfg": 6.0, **ADAPTIVE}},
        "31": {"class_type": "M4EarlyStopSampler", "inputs": {"ancestral": False, "tolerance": 0.05, "patience": 2,
                                                             "min_fraction": 0.3, "eta": 1.0, "s_noise": 1.0}},
        "32": {"class_type": "BasicScheduler", "inputs": {"model": ["4", 0], "scheduler": "karras", "steps": 8,
                                                          "denoise": 1.0}},
        "33": {"class_type": "RandomNoise", "inputs": {"noise_seed": 3}},
        "34": {"class_type": "SamplerCustomAdvanced", "inputs": {"noise": ["33", 0], "guider": ["30", 0],
                                                                 "sampler": ["31", 0], "sigmas": ["32", 0],
                                                                 "latent_image": ["5", 0]}},
        "35": {"class_type": "VAEDecode", "inputs": {"samples": ["34", 0], "vae": ["4", 2]}},
        "36": {"class_type": "PreviewImage", "inputs": {"images": ["35", 0]}},
        # the drop-in KSampler, whose ui payload carries the schedule it used
        "40": {"class_type": "M4AdaptiveKSampler", "inputs": {
            "model": ["4", 0], "seed": 1, "steps": 5, "cfg": 6.0, "sampler_name": "heun", "scheduler": "karras",
            "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0], "denoise": 1.0, **ADAPTIVE}},
        "41": {"class_type": "PreviewImage", "inputs": {"images": ["40", 3]}},
    })
    entry = comfy_server.run(wf)
    assert entry["status"]["status_str"] == "success"
    assert entry["outputs"]["36"]["images"] and entry["outputs"]["41"]["images"]
    panel = entry["outputs"]["40"]["m4_panel"][0]
    assert panel["kind"] == "schedule"
    calls = panel["data"]["calls"]
    assert len(calls) > 5  # heun: in-between evaluations are in the record
    assert panel["data"]["uncond_calls"] == sum(1 for c in calls if c["uncond"]) < len(calls)
