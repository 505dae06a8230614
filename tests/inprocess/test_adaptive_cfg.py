"""Adaptive CFG inside ComfyUI's real sampler (in-process, tiny random-weight model).

Model rows are counted with a forward pre-hook on the diffusion model, split by
transformer_options["cond_or_uncond"], so skipped unconditional passes are measured, not assumed.
"""

from __future__ import annotations

import importlib
import math

import pytest
import torch


def _wrappers_mp():
    from comfy.patcher_extension import WrappersMP

    return WrappersMP


@pytest.fixture()
def mods(pack):
    return (
        importlib.import_module("m4_director.nodes.adaptive_cfg"),
        importlib.import_module("m4_director.nodes.adaptive_sampler"),
        importlib.import_module("m4_director.agents.guidance"),
    )


class Rows:
    def __init__(self, patcher):
        self.calls: list[tuple[int, int]] = []  # (cond rows, uncond rows) per model forward
        self._h = patcher.model.diffusion_model.register_forward_pre_hook(self._hook, with_kwargs=True)

    def _hook(self, module, args, kwargs):
        kinds = kwargs["transformer_options"]["cond_or_uncond"]
        per = args[0].shape[0] // len(kinds)
        u = per * kinds.count(1)
        self.calls.append((args[0].shape[0] - u, u))

    @property
    def uncond(self) -> int:
        return sum(u for _, u in self.calls)

    @property
    def cond(self) -> int:
        return sum(c for c, _ in self.calls)

    def close(self):
        self._h.remove()


def ksample(comfy, model, pos, neg, cfg=5.0, steps=8, sampler="euler", scheduler="normal", denoise=1.0,
            latent=None, seed=0):
    latent = torch.zeros(1, 4, 8, 8) if latent is None else latent
    noise = comfy.sample.prepare_noise(latent, seed)
    return comfy.sample.sample(model, noise, steps, cfg, sampler, scheduler, pos, neg, latent, denoise=denoise,
                               seed=seed, disable_pbar=True)


OPTS = dict(schedule="s_curve", cfg_min=1.0, cfg_max=12.0, skip_below=1.5, quality_adjust=True, agreement_cutoff=0.0,
            interval_sigma_lo=0.28, interval_sigma_hi=5.42, early_stop=False, early_stop_tolerance=0.02)


def settings(g, **kw):
    base = dict(schedule="constant", quality_adjust=False, skip_below=0.0, cfg_min=0.0, cfg_max=100.0)
    base.update(kw)
    return g.GuidanceSettings(**base)


def test_constant_schedule_equals_comfy_cfg(comfy, mods, tiny_model, tiny_conditioning):
    ac, _, g = mods
    pos, neg = tiny_conditioning
    plain = ksample(comfy, tiny_model, pos, neg, cfg=6.0)
    runs = []
    patched = ac.patch_model(tiny_model, settings(g), sink=runs.append)
    rows = Rows(tiny_model)
    adaptive = ksample(comfy, patched, pos, neg, cfg=6.0)
    rows.close()
    assert torch.allclose(plain, adaptive, atol=1e-5, rtol=1e-5)
    assert rows.uncond == 8 and rows.cond == 8
    assert [c["cfg"] for c in runs[0]["calls"]] == pytest.approx([6.0] * 8)


def test_scale_one_skips_uncond_on_ksampler_path(comfy, mods, tiny_model, tiny_conditioning):
    ac, _, g = mods
    pos, neg = tiny_conditioning
    runs = []
    s = settings(g, schedule="interval", interval_sigma_lo=1.0, interval_sigma_hi=100.0)
    patched = ac.patch_model(tiny_model, s, sink=runs.append)
    rows = Rows(tiny_model)
    ksample(comfy, patched, pos, neg, cfg=5.0, steps=10)
    rows.close()
    calls = runs[0]["calls"]
    assert len(calls) == len(rows.calls) == 10
    for entry, (c, u) in zip(calls, rows.calls, strict=True):
        assert c == 1
        assert (u == 1) == entry["uncond"] == (entry["sigma"] > 1.0)
        assert entry["cfg"] == (5.0 if entry["sigma"] > 1.0 else 1.0)
    assert 0 < rows.uncond < 10


def test_sampler_custom_advanced_honours_patch_and_matches_ksampler(comfy, mods, tiny_model, tiny_conditioning):
    ac, _, g = mods
    pos, neg = tiny_conditioning
    s = settings(g, schedule="s_curve", skip_below=2.5)
    runs = []
    patched = ac.patch_model(tiny_model, s, sink=runs.append)
    via_ksampler = ksample(comfy, patched, pos, neg, cfg=5.0, steps=10, scheduler="karras")
    sigmas = comfy.samplers.calculate_sigmas(tiny_model.get_model_object("model_sampling"), "karras", 10)
    latent = torch.zeros(1, 4, 8, 8)
    guider = comfy.samplers.CFGGuider(patched)
    guider.set_conds(pos, neg)
    guider.set_cfg(5.0)
    rows = Rows(tiny_model)
    via_custom = guider.sample(comfy.sample.prepare_noise(latent, 0), latent, comfy.samplers.sampler_object("euler"),
                               sigmas, disable_pbar=True, seed=0)
    rows.close()
    assert guider.cfg == 5.0  # restored after every call
    assert torch.allclose(via_ksampler, via_custom, atol=1e-5)
    skipped = sum(1 for e in runs[1]["calls"] if not e["uncond"])
    assert skipped > 0 and rows.uncond == 10 - skipped


def test_adaptive_guider_matches_patch(comfy, mods, tiny_model, tiny_conditioning):
    ac, _, g = mods
    pos, neg = tiny_conditioning
    s = settings(g, schedule="cosine_down", quality_adjust=True, skip_below=1.5)
    runs_p, runs_g = [], []
    patched = ac.patch_model(tiny_model, s, sink=runs_p.append)
    a = ksample(comfy, patched, pos, neg, cfg=7.0, steps=8, scheduler="karras")
    sigmas = comfy.samplers.calculate_sigmas(tiny_model.get_model_object("model_sampling"), "karras", 8)
    latent = torch.zeros(1, 4, 8, 8)
    guider = ac.AdaptiveCFGGuider(tiny_model, s, sink=runs_g.append)
    guider.set_conds(pos, neg)
    guider.set_cfg(7.0)
    b = guider.sample(comfy.sample.prepare_noise(latent, 0), latent, comfy.samplers.sampler_object("euler"), sigmas,
                      disable_pbar=True, seed=0)
    assert torch.allclose(a, b, atol=1e-5)
    assert [e["cfg"] for e in runs_p[0]["calls"]] == pytest.approx([e["cfg"] for e in runs_g[0]["calls"]])
    assert any(not e["uncond"] for e in runs_g[0]["calls"])  # cosine_down reaches 1.0 at the end


def test_unpatched_model_unaffected(comfy, mods, tiny_model, tiny_conditioning):
    ac, _, g = mods
    pos, neg = tiny_conditioning
    never = ksample(comfy, tiny_model, pos, neg, cfg=5.0)
    patched = ac.patch_model(tiny_model, settings(g, schedule="linear_up", skip_below=2.0))
    changed = ksample(comfy, patched, pos, neg, cfg=5.0)
    after = ksample(comfy, tiny_model, pos, neg, cfg=5.0)
    assert not torch.allclose(changed, never, atol=1e-4)  # the patch does something...
    assert torch.equal(after, never)  # ...and leaves the original alone
    assert not tiny_model.get_wrappers(_wrappers_mp().PREDICT_NOISE, ac.WRAPPER_KEY)


def test_chains_with_another_predict_noise_wrapper(comfy, mods, tiny_model, tiny_conditioning):
    ac, _, g = mods
    pos, neg = tiny_conditioning
    seen = []

    def other(executor, x, t, model_options, seed):
        seen.append(executor.class_obj.cfg)
        return executor(x, t, model_options, seed)

    m = tiny_model.clone()
    m.add_wrapper_with_key(_wrappers_mp().PREDICT_NOISE, "someone_else", other)
    patched = ac.patch_model(m, settings(g))
    ksample(comfy, patched, pos, neg, cfg=4.0, steps=4)
    assert seen == [4.0] * 4


def test_in_between_sigmas_heun_and_dpm2(comfy, mods, tiny_model, tiny_conditioning):
    ac, _, g = mods
    pos, neg = tiny_conditioning
    ms = tiny_model.get_model_object("model_sampling")
    for sampler in ("heun", "dpm_2"):
        runs = []
        patched = ac.patch_model(tiny_model, settings(g, schedule="s_curve"), sink=runs.append)
        ksample(comfy, patched, pos, neg, cfg=5.0, steps=5, sampler=sampler, scheduler="karras")
        calls = runs[0]["calls"]
        assert len(calls) > 5  # second-order: in-between evaluations
        sched = [round(v, 5) for v in runs[0]["sample_sigmas"]]
        if sampler == "dpm_2":
            assert any(round(c["sigma"], 5) not in sched for c in calls)
        for c in calls:
            # independent of the pack: SD1.5's timestep index / 999 is the normalised noise level
            t_ref = float(ms.timestep(torch.tensor(c["sigma"]))) / 999.0
            assert c["t_norm"] == pytest.approx(t_ref, abs=2e-3)
            expected = 5.0 * (0.3 + 1.1 / (1 + math.exp(-12 * (t_ref - 0.5))))
            assert c["cfg"] == pytest.approx(expected, rel=1e-2)


def test_denoise_below_one_keys_on_noise_level(comfy, mods, tiny_model, tiny_conditioning):
    ac, _, g = mods
    pos, neg = tiny_conditioning
    runs = []
    patched = ac.patch_model(tiny_model, settings(g, schedule="s_curve"), sink=runs.append)
    latent = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(3))
    ksample(comfy, patched, pos, neg, cfg=5.0, steps=6, denoise=0.4, latent=latent)
    calls = runs[0]["calls"]
    assert len(calls) == 6
    assert calls[0]["t_norm"] < 0.5  # starts mid-schedule, not at "step 0 = full noise"
    assert calls[0]["cfg"] < 5.0 * 0.9


def _converging_stop(comfy, ac, g, model, pos, neg, tol):
    runs = []
    s = settings(g, early_exit=g.EarlyExitSettings(tolerance=tol, patience=2, min_fraction=0.3))
    patched = ac.patch_model(model, s, sink=runs.append)
    rows = Rows(model)
    out = ksample(comfy, patched, pos, neg, cfg=3.0, steps=30, scheduler="karras")
    rows.close()
    return out, runs[0], rows


def test_patch_early_stop_fires_and_saves_evaluations(comfy, mods, tiny_model, tiny_conditioning):
    ac, _, g = mods
    pos, neg = tiny_conditioning
    out, summary, rows = _converging_stop(comfy, ac, g, tiny_model, pos, neg, tol=0.05)
    assert summary["stopped_at_sigma"] is not None
    assert summary["skipped_calls"] > 0 and summary["steps_used"] < 30
    assert len(rows.calls) == 30 - summary["skipped_calls"] == summary["model_calls"]
    assert torch.isfinite(out).all()


def test_early_stop_does_not_fire_on_diverging_run(comfy, mods, tiny_model, tiny_conditioning):
    ac, _, g = mods
    pos, neg = tiny_conditioning
    m = tiny_model.clone()
    flip = {"n": 0}

    def oscillate(apply_model, args):  # a denoiser whose estimate keeps jumping
        flip["n"] += 1
        out = apply_model(args["input"], args["timestep"], **args["c"])
        return out + (1.0 if flip["n"] % 2 else -1.0)

    m.set_model_unet_function_wrapper(oscillate)
    _, summary, rows = _converging_stop(comfy, ac, g, m, pos, neg, tol=0.05)
    assert summary["stopped_at_sigma"] is None and summary["skipped_calls"] == 0
    assert len(rows.calls) == 30


def test_early_stop_sampler(comfy, mods, tiny_model, tiny_conditioning):
    _, asamp, _ = mods
    pos, neg = tiny_conditioning
    sigmas = comfy.samplers.calculate_sigmas(tiny_model.get_model_object("model_sampling"), "karras", 30)
    latent = torch.zeros(1, 4, 8, 8)
    for ancestral in (False, True):
        report: dict = {}
        sampler = asamp.early_stop_sampler(ancestral=ancestral, tolerance=0.05, min_fraction=0.3, report=report)
        guider = comfy.samplers.CFGGuider(tiny_model)
        guider.set_conds(pos, neg)
        guider.set_cfg(3.0)
        steps_seen = []
        rows = Rows(tiny_model)
        out = guider.sample(comfy.sample.prepare_noise(latent, 0), latent, sampler, sigmas,
                            callback=lambda i, d, x, n, seen=steps_seen: seen.append((i, n)), disable_pbar=True,
                            seed=0)
        rows.close()
        assert report["stopped_at_step"] is not None and report["steps_used"] < 30
        assert len(rows.calls) == report["steps_used"]
        assert [i for i, _ in steps_seen] == list(range(30))  # progress completes: skipped steps reported
        assert torch.isfinite(out).all()
    # diverging: tolerance that a random model never meets -> runs every step
    report = {}
    sampler = asamp.early_stop_sampler(tolerance=1e-9, report=report)
    guider = comfy.samplers.CFGGuider(tiny_model)
    guider.set_conds(pos, neg)
    guider.set_cfg(3.0)
    guider.sample(comfy.sample.prepare_noise(latent, 0), latent, sampler, sigmas, disable_pbar=True, seed=0)
    assert report["stopped_at_step"] is None and report["steps_used"] == 30


def test_batch_of_two(comfy, mods, tiny_model):
    ac, _, g = mods
    from host import inprocess

    pos, neg = inprocess.conditioning(batch=2)
    latent = torch.zeros(2, 4, 8, 8)
    runs = []
    patched = ac.patch_model(tiny_model, settings(g, schedule="s_curve", skip_below=2.5), sink=runs.append)
    rows = Rows(tiny_model)
    out = ksample(comfy, patched, pos, neg, cfg=5.0, steps=8, latent=latent)
    rows.close()
    assert out.shape == (2, 4, 8, 8)
    n_uncond = sum(1 for e in runs[0]["calls"] if e["uncond"])
    assert 0 < n_uncond < 8 and rows.uncond == 2 * n_uncond and rows.cond == 16


def test_video_latent_through_comfy_sampler(comfy, mods):
    ac, _, g = mods
    from bench.gmm_model import build_model, class_context, make_gmm

    spec = make_gmm(dim=4 * 3 * 2 * 2, classes=2, modes=2)
    model = build_model(spec)
    latent = torch.zeros(2, 4, 3, 2, 2)  # [B, C, T, H, W]
    runs = []
    s = settings(g, schedule="s_curve", quality_adjust=True, skip_below=1.5)
    patched = ac.patch_model(model, s, sink=runs.append)
    pos = [[class_context(spec, 1), {}]]
    neg = [[class_context(spec, None), {}]]
    out = ksample(comfy, patched, pos, neg, cfg=3.0, steps=8, scheduler="karras", latent=latent)
    assert out.shape == latent.shape and torch.isfinite(out).all()
    assert len(runs[0]["calls"]) == 8


def test_adaptive_ksampler_node_outputs(comfy, mods, tiny_model, tiny_conditioning):
    _, asamp, _ = mods
    pos, neg = tiny_conditioning
    node = asamp.M4AdaptiveKSampler
    out = node.execute(tiny_model, 0, 6, 5.0, "euler", "normal", pos, neg, {"samples": torch.zeros(1, 4, 8, 8)}, 1.0,
                       **OPTS)
    latent, schedule, text, plot, steps_used = out.result
    assert latent["samples"].shape == (1, 4, 8, 8)
    assert len(schedule["calls"]) == 6 and steps_used == 6
    import json

    assert json.loads(text)["calls"][0]["cfg"] == schedule["calls"][0]["cfg"]
    assert plot.ndim == 4 and plot.shape[0] == 1 and plot.shape[3] == 3 and float(plot.std()) > 0
    panel = out.ui["m4_panel"][0]
    assert panel["kind"] == "schedule" and panel["data"]["calls"] == schedule["calls"]


def test_bad_inputs_name_the_input(comfy, mods, tiny_model, tiny_conditioning):
    ac, asamp, g = mods
    pos, neg = tiny_conditioning
    with pytest.raises(ValueError, match="cfg_min/cfg_max"):
        g.GuidanceSettings(cfg_min=9.0, cfg_max=3.0)
    with pytest.raises(ValueError, match="schedule"):
        g.GuidanceSettings(schedule="zigzag")
    node = asamp.M4AdaptiveKSampler
    args = OPTS
    bad = torch.zeros(1, 4, 8, 8)
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="latent_image"):
        node.execute(tiny_model, 0, 6, 5.0, "euler", "normal", pos, neg, {"samples": bad}, 1.0, **args)
    with pytest.raises(ValueError, match="steps"):
        node.execute(tiny_model, 0, 0, 5.0, "euler", "normal", pos, neg, {"samples": torch.zeros(1, 4, 8, 8)}, 1.0,
                     **args)
    with pytest.raises(ValueError, match="cfg_min/cfg_max"):
        ac.M4AdaptiveCFG.execute(tiny_model, **dict(OPTS, cfg_min=9.0, cfg_max=3.0))
    with pytest.raises(ValueError, match="early_stop_rule"):
        ac.M4AdaptiveCFG.execute(tiny_model, **dict(OPTS, early_stop_rule="soon"))
    with pytest.raises(ValueError, match="skip_below"):
        ac.M4AdaptiveGuider.execute(tiny_model, pos, neg, 5.0, **dict(OPTS, skip_below=-1.0))
    with pytest.raises(ValueError, match="^rule: 'never'"):  # the node's own input name (nodes/combo_check.py)
        asamp.M4EarlyStopSampler.execute(False, 0.02, 2, 0.5, 1.0, 1.0, rule="never")


def test_node_defaults_on_a_real_sampler(comfy, mods):
    """The nodes' default inputs (linear_up, skip_below 1.5, early stop on) through comfy.sample on the
    exact GMM model: uncond skipped at high noise, CFG never falls as noise falls, the run stops early,
    and fewer rows are evaluated than with plain CFG at the same base."""
    ac, _, g = mods
    from bench.gmm_model import build_model, class_context, make_gmm

    d = ac.DEFAULTS
    schema_defaults = {i.id: getattr(i, "default", None) for i in ac.guidance_inputs()}
    assert all(schema_defaults[k] == v for k, v in d.items())
    st = ac.settings_from_inputs({})  # every option at its default
    assert st.schedule == "linear_up" and st.early_exit is not None
    spec = make_gmm(dim=8, classes=3, modes=2, spread=0.45, seed=11)
    model = build_model(spec)
    pos = [[class_context(spec, 0), {}]]
    neg = [[class_context(spec, None), {}]]
    latent = torch.zeros(64, 8, 1, 1)
    rows = Rows(model)
    plain = ksample(comfy, model, pos, neg, cfg=3.0, steps=20, scheduler="karras", latent=latent)
    plain_rows = rows.cond + rows.uncond
    rows.calls.clear()
    runs = []
    out = ksample(comfy, ac.patch_model(model, st, sink=runs.append), pos, neg, cfg=3.0, steps=20,
                  scheduler="karras", latent=latent)
    rows.close()
    assert torch.isfinite(out).all() and not torch.equal(out, plain)
    calls = [c for c in runs[0]["calls"] if not c["skipped"]]
    assert not calls[0]["uncond"] and calls[0]["cfg"] == 1.0
    cfgs = [c["cfg"] for c in calls]
    assert all(b >= a - 1e-9 for a, b in zip(cfgs, cfgs[1:], strict=False)) and max(cfgs) > 3.0
    assert runs[0]["steps_used"] < 20
    assert rows.cond + rows.uncond <= 0.75 * plain_rows


def test_an_uncond_pass_forced_by_another_node_is_reported_live_as_run(comfy, mods, tiny_model, tiny_conditioning,
                                                                       monkeypatch):
    # A node that needs the uncond pass (SAG, *_cfg_pp) sets disable_cfg1_optimization: ComfyUI then runs it
    # even where the schedule's scale is 1, and the live m4.guidance events must say so, like the summary.
    ac, _, g = mods
    pos, neg = tiny_conditioning
    events: list[dict] = []
    monkeypatch.setattr(importlib.import_module("m4_director.nodes.adaptive_runtime"), "send_event", events.append)
    runs = []
    s = settings(g, schedule="interval", interval_sigma_lo=1.0, interval_sigma_hi=100.0)
    patched = ac.patch_model(tiny_model, s, node_id="7", sink=runs.append)
    patched.set_model_sampler_post_cfg_function(lambda args: args["denoised"], disable_cfg1_optimization=True)
    rows = Rows(tiny_model)
    ksample(comfy, patched, pos, neg, cfg=5.0, steps=10)
    rows.close()
    live = [e for e in events if "index" in e]
    assert len(live) == len(rows.calls) == 10
    assert rows.uncond == 10 and all(e["uncond"] for e in live)
    assert [e["uncond"] for e in live] == [c["uncond"] for c in runs[0]["calls"]]
    assert any(e["cfg"] == 1.0 for e in live)  # the schedule did turn guidance off on some calls
