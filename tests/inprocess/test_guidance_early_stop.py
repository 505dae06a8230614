"""The noise-robust early stop ("residual" rule) and the per-run guidance gap on ComfyUI's real samplers,
with the exact GMM model (bench/gmm_model.py): SDE/ancestral samplers, batches whose items converge at
different steps, denoise < 1 and video-shaped latents."""

from __future__ import annotations

import importlib

import pytest
import torch


@pytest.fixture()
def ac(pack):
    return importlib.import_module("m4_director.nodes.adaptive_cfg")


@pytest.fixture()
def gmm(comfy):
    from bench.gmm_model import build_model, class_context, make_gmm

    spec = make_gmm(dim=8, classes=3, modes=2, spread=1.0, seed=3)
    return spec, build_model(spec), [[class_context(spec, 0), {}]], [[class_context(spec, None), {}]]


def _sample(comfy, model, pos, neg, latent, sampler, steps=30, cfg=3.0, denoise=1.0, noise=None, seed=0,
            scheduler="karras"):
    noise = comfy.sample.prepare_noise(latent, seed) if noise is None else noise
    return comfy.sample.sample(model, noise, steps, cfg, sampler, scheduler, pos, neg, latent, denoise=denoise,
                               seed=seed, disable_pbar=True)


def _opts(ac, **kw):
    return ac.settings_from_inputs({"schedule": "constant", "skip_below": 0.0, **kw})


@pytest.mark.parametrize("sampler", ["euler_ancestral", "dpmpp_2m_sde", "dpmpp_sde"])
def test_residual_rule_stops_where_the_denoised_change_rule_does_not(comfy, ac, gmm, sampler):
    spec, model, pos, neg = gmm
    latent = torch.zeros(16, spec.dim, 1, 1)
    runs: dict[str, list[dict]] = {"denoised change": [], "residual": []}
    outs = {}
    for rule, sink in runs.items():
        s = _opts(ac, early_stop=True, early_stop_rule=rule, early_stop_tolerance=0.02)
        outs[rule] = _sample(comfy, ac.patch_model(model, s, sink=sink.append), pos, neg, latent, sampler)
    full = _sample(comfy, model, pos, neg, latent, sampler)
    old, new = runs["denoised change"][0], runs["residual"][0]
    # injected noise keeps the original rule's successive estimates apart: it stops later (or never)
    assert new["steps_used"] < old["steps_used"]
    assert "saved" in new["early_stop_note"] and "nothing" not in new["early_stop_note"]
    # what the stop returns is within the tolerance's reach of the full run (per item, relative)
    rel = (outs["residual"] - full).flatten(1).norm(dim=1) / full.flatten(1).norm(dim=1)
    assert float(rel.max()) < 0.1


def test_one_item_still_moving_keeps_the_batch_running(comfy, ac, gmm):
    """Items alone stop at different steps; together the batch stops with the slower one, never the faster."""
    spec, model, pos, neg = gmm
    latent1 = torch.zeros(1, spec.dim, 1, 1)
    s = _opts(ac, early_stop=True, early_stop_rule="residual", early_stop_tolerance=0.05)
    alone = []
    noises = [torch.randn(1, spec.dim, 1, 1, generator=torch.Generator().manual_seed(k)) for k in range(12)]
    for noise in noises:
        runs: list[dict] = []
        _sample(comfy, ac.patch_model(model, s, sink=runs.append), pos, neg, latent1, "euler", noise=noise)
        alone.append(runs[0]["steps_used"])
    a, b = min(range(12), key=alone.__getitem__), max(range(12), key=alone.__getitem__)
    assert alone[a] < alone[b], alone  # some items converge earlier than others
    runs = []
    both = _sample(comfy, ac.patch_model(model, s, sink=runs.append), pos, neg, torch.zeros(2, spec.dim, 1, 1),
                   "euler", noise=torch.cat([noises[a], noises[b]]))
    assert runs[0]["steps_used"] == alone[b]
    slow_alone = _sample(comfy, ac.patch_model(model, s), pos, neg, latent1, "euler", noise=noises[b])
    assert torch.allclose(both[1:], slow_alone, atol=1e-5)  # the slow item was not frozen early


def test_residual_rule_with_denoise_below_one_and_video_latents(comfy, ac):
    from bench.gmm_model import build_model, class_context, make_gmm

    spec = make_gmm(dim=4 * 3 * 2 * 2, classes=2, modes=2, spread=1.0, seed=5)
    model = build_model(spec)
    pos, neg = [[class_context(spec, 1), {}]], [[class_context(spec, None), {}]]
    latent = torch.randn(2, 4, 3, 2, 2, generator=torch.Generator().manual_seed(1))  # [B, C, T, H, W]
    s = _opts(ac, early_stop=True, early_stop_rule="residual", early_stop_tolerance=0.05, gap_cutoff=0.1)
    runs: list[dict] = []
    out = _sample(comfy, ac.patch_model(model, s, sink=runs.append), pos, neg, latent, "euler_ancestral", steps=30,
                  denoise=0.6)
    assert out.shape == latent.shape and torch.isfinite(out).all()
    r = runs[0]
    assert r["steps"] == 30 and r["steps_used"] < 30  # denoise 0.6: 30 steps over the lower part of the schedule
    assert r["sample_sigmas"][0] < 20.0 * 0.5
    assert r["skipped_calls"] == 30 - r["steps_used"]


def _guided_window(unconds: list[bool]) -> tuple[int, int]:
    """(first, end) of the one guided stretch after the measuring first call; asserts there is only one."""
    assert unconds[0]  # the first call measures the gap
    rest = unconds[1:]
    first = rest.index(True) + 1 if True in rest else len(unconds)
    end = first + (unconds[first:].index(False) if False in unconds[first:] else len(unconds) - first)
    assert not any(unconds[end:])  # a latch: once off, off for the rest of the run
    return first, end


def test_the_wait_ends_at_the_step_that_crosses_its_level_on_a_short_run(comfy, ac, gmm):
    # The runtime reads the run's schedule (sample_sigmas) and hands the controller each call's step end: with the
    # lookahead the crossing step is guided, one call before the call-by-call wait resumes guidance, never later.
    import dataclasses

    spec, model, pos, neg = gmm
    latent = torch.zeros(16, spec.dim, 1, 1)
    firsts, sigmas = [], []
    for look in (0, 1):
        runs: list[dict] = []
        s = dataclasses.replace(_opts(ac, gap_cutoff=0.1, early_stop=False), gap_wait_lookahead=look)
        _sample(comfy, ac.patch_model(model, s, sink=runs.append), pos, neg, latent, "euler", steps=12)
        firsts.append(_guided_window([c["uncond"] for c in runs[0]["calls"]])[0])
        sigmas.append([c["sigma"] for c in runs[0]["calls"]])
    assert firsts[0] > 1  # the run does wait without the lookahead
    assert firsts[1] == firsts[0] - 1
    assert sigmas[0] == sigmas[1]


def test_guidance_gap_guides_where_the_class_is_decided_and_only_there(comfy, ac, gmm):
    spec, model, pos, neg = gmm
    latent = torch.zeros(32, spec.dim, 1, 1)
    runs: list[dict] = []
    s = _opts(ac, gap_cutoff=0.1, early_stop=False)
    _sample(comfy, ac.patch_model(model, s, sink=runs.append), pos, neg, latent, "euler", steps=30)
    unconds = [c["uncond"] for c in runs[0]["calls"]]
    first, end = _guided_window(unconds)
    assert 1 < first < end < 28  # unguided at the highest noise, guided in between, dropped at the end
    note = runs[0]["gap_note"]  # the schedule output says so
    assert note.startswith("unguided above sigma") and f"({first - 1} call" in note and "then off" in note
    # overlapping classes need guidance longer: the drop comes later (per run, not a fixed noise level)
    from bench.gmm_model import build_model, class_context, make_gmm

    close = make_gmm(dim=8, classes=3, modes=2, spread=0.25, seed=3)
    m2 = build_model(close)
    runs2: list[dict] = []
    _sample(comfy, ac.patch_model(m2, s, sink=runs2.append), [[class_context(close, 0), {}]],
            [[class_context(close, None), {}]], latent, "euler", steps=30)
    assert _guided_window([c["uncond"] for c in runs2[0]["calls"]])[1] > end


def test_a_run_that_never_converges_says_so_in_its_schedule(comfy, ac, gmm):
    spec, model, pos, neg = gmm
    runs: list[dict] = []
    s = _opts(ac, early_stop=True, early_stop_rule="residual", early_stop_tolerance=1e-4)
    _sample(comfy, ac.patch_model(model, s, sink=runs.append), pos, neg, torch.zeros(4, spec.dim, 1, 1), "euler",
            steps=12)
    assert runs[0]["steps_used"] == 12 and "saved nothing" in runs[0]["early_stop_note"]


def test_a_stop_at_the_last_call_is_not_called_a_saving(comfy, ac):
    rt = importlib.import_module("m4_director.nodes.adaptive_runtime")
    s = _opts(ac, early_stop=True, early_stop_rule="residual")
    assert rt.early_stop_note(s, 0.03, 12, 12).startswith("early stop (residual) saved nothing: the run converged only")
    assert rt.early_stop_note(s, 0.3, 10, 12) == "early stop (residual) saved 2 of 12 steps"
    assert "did not converge" in rt.early_stop_note(s, None, 12, 12)


def test_new_options_are_validated_by_name(comfy, ac):
    with pytest.raises(ValueError, match="gap_cutoff"):
        _opts(ac, gap_cutoff=-0.1)
    with pytest.raises(ValueError, match="early_stop_rule"):
        _opts(ac, early_stop_rule="fast")


def test_the_preset_on_the_adaptive_ksampler_with_an_sde_sampler(comfy, pack, gmm):
    asamp = importlib.import_module("m4_director.nodes.adaptive_sampler")
    spec, model, pos, neg = gmm
    latent = {"samples": torch.zeros(8, spec.dim, 1, 1)}
    out = asamp.M4AdaptiveKSampler.execute(model, 0, 30, 3.0, "dpmpp_2m_sde", "karras", pos, neg, latent, 1.0,
                                           preset="gap_residual")
    _, schedule, _, plot, steps_used = out.result
    assert schedule["settings"]["early_exit"]["rule"] == "residual" and schedule["settings"]["gap_cutoff"] > 0
    assert steps_used < 30 and "saved" in schedule["early_stop_note"]
    calls = [c for c in schedule["calls"] if not c["skipped"]]
    assert calls[0]["uncond"] and not calls[-1]["uncond"]  # guided first, dropped once cond and uncond agree
    assert plot.shape[0] == 1 and plot.shape[3] == 3
    plain = asamp.M4AdaptiveKSampler.execute(model, 0, 30, 3.0, "dpmpp_2m_sde", "karras", pos, neg, latent, 1.0)
    assert plain.result[1]["settings"]["early_exit"]["rule"] == "denoised change"  # no preset: today's rule


def test_a_multistep_sampler_still_moves_points_that_sit_on_their_estimate(comfy, ac):
    """Why the residual rule's optional history condition exists (tunables.early_stop_residual_history): on the
    tuning row tune_short18 (dpmpp_3m_sde, 9 steps, base 7.5) the plain rule stops with two steps left, each
    point within 10 % of its own estimate, and the result lands far from the full run, because the sampler
    extrapolates the trend of its past estimates; with the history condition the stop waits and the result is
    the full run's."""
    import dataclasses

    from bench import bench_guidance_configs as configs
    from bench.gmm_model import build_model, class_context, make_gmm

    c = configs.tune_short_set()[18]
    assert (c.sampler, c.steps, c.base) == ("dpmpp_3m_sde", 9, 7.5)
    spec = make_gmm(c.dim, c.classes, c.modes, std=c.std, spread=c.spread, seed=c.seed)
    model, pos, neg = build_model(spec), [[class_context(spec, 0), {}]], [[class_context(spec, None), {}]]
    latent = torch.zeros(32, spec.dim, 1, 1)
    plain = _opts(ac, early_stop=True, early_stop_rule="residual", early_stop_tolerance=0.1)
    held = dataclasses.replace(plain, early_exit=dataclasses.replace(plain.early_exit, history=0.1))

    def run(model_):
        return _sample(comfy, model_, pos, neg, latent, c.sampler, steps=c.steps, cfg=c.base, seed=c.seed,
                       scheduler=c.scheduler).flatten(1)

    full = run(model)
    runs: dict[str, list[dict]] = {"plain": [], "held": []}
    outs = {k: run(ac.patch_model(model, s, sink=runs[k].append)) for k, s in (("plain", plain), ("held", held))}
    rel = ((outs["plain"] - full).norm(dim=1) / full.norm(dim=1)).mean()
    assert runs["plain"][0]["steps_used"] < c.steps and float(rel) > 0.2  # stopped, and far from the full run
    assert runs["held"][0]["steps_used"] == c.steps
    assert torch.allclose(outs["held"], full, atol=1e-4)
