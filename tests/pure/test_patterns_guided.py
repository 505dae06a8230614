"""Guided CPPN: the optimiser on a classical target it can reach (a reference image's colour and
orientation histograms), and the CLIP mechanics with a tiny random open_clip model saved by the test
(random weights: the loss falling says the gradients flow, nothing about aesthetics)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from patterns_signals import click_track

from agents.patterns.audio_features import extract_features
from agents.patterns.errors import PatternsError
from agents.patterns.guided import (
    GuideSettings,
    _frame,
    _loud_quiet,
    guided_weights,
    histogram_target,
    load_clip_target,
    optimise,
)
from agents.patterns.palettes import palette_from_image
from agents.patterns.render import make_renderer, schedule_for
from host.tiny_open_clip import save_tiny_open_clip


@pytest.fixture(scope="module")
def feats():
    return extract_features(click_track(np.array([0.3, 0.8, 1.3]), 22050, 2.0)[None], 22050, 30.0)


@pytest.fixture(scope="module")
def tiny_clip_dir(tmp_path_factory):
    return save_tiny_open_clip(tmp_path_factory.mktemp("tiny_open_clip_patterns"))


def _stripes() -> np.ndarray:
    ref = np.zeros((48, 48, 3), np.float32)
    ref[:, ::8] = [0.1, 0.2, 0.9]  # vertical blue stripes on dark red: one strong orientation
    ref[:, 1::8] = [0.1, 0.2, 0.9]
    ref[ref.sum(-1) == 0] = [0.4, 0.05, 0.05]
    return ref


def _reactivity(r, feats, weights) -> float:
    sched = schedule_for(r, feats)
    loud, quiet = _loud_quiet(feats)
    with torch.no_grad():
        return float(np.mean([(_frame(r, w, loud, sched) - _frame(r, w, quiet, sched)).abs().mean() for w in weights]))


def test_the_optimiser_reaches_a_reference_histogram_and_keeps_reacting(feats):
    ref = _stripes()
    r = make_renderer("pulse", 24, 24, 0, palette=palette_from_image(ref), pattern="geometric")
    loss = histogram_target(ref)
    weights, losses = optimise(r, feats, loss, GuideSettings(steps=40, lr=0.05, size=24))
    assert np.mean(losses[-5:]) < 0.75 * np.mean(losses[:3]), (losses[:3], losses[-5:])
    assert _reactivity(r, feats, weights) >= 0.5 * _reactivity(r, feats, r.weights)
    assert not torch.equal(weights[0].layers[0][0], r.weights[0].layers[0][0])  # the weights moved


def test_clip_guidance_mechanics_with_a_tiny_local_model(feats, tiny_clip_dir):
    loss_fn, target_id = load_clip_target(str(tiny_clip_dir), "glowing blue waves")
    r = make_renderer("pulse", 24, 24, 0)
    weights, losses = optimise(r, feats, loss_fn, GuideSettings(steps=25, lr=0.05, size=24, seed=1))
    assert all(np.isfinite(losses)) and np.mean(losses[-5:]) < np.mean(losses[:5]), losses
    assert str(tiny_clip_dir.resolve()) in target_id and target_id.endswith("glowing blue waves")
    calls = []
    settings = GuideSettings(steps=3, lr=0.05, size=16)
    first, hit = guided_weights(feats, "pulse", None, 0, target_id, lambda: loss_fn, settings,
                                on_step=lambda i, v: calls.append(i))
    again, hit2 = guided_weights(feats, "pulse", None, 0, target_id, lambda: loss_fn, settings,
                                 on_step=lambda i, v: calls.append(i))
    assert (hit, hit2) == (False, True) and again is first and calls == [1, 2, 3]
    other, hit3 = guided_weights(feats, "pulse", None, 0, target_id + " at night", lambda: loss_fn, settings)
    assert not hit3 and other is not first


@pytest.mark.parametrize(("path", "match"), [
    ("", "open_clip_model_path: empty path"),
    ("/nonexistent/model/folder", "open_clip_model_path: folder not found"),
])
def test_bad_clip_model_paths_are_named(path, match):
    with pytest.raises(PatternsError, match=match):
        load_clip_target(path, "a prompt")


def test_a_folder_that_is_not_a_model_is_refused(tmp_path):
    (tmp_path / "open_clip_config.json").write_text("{}")
    (tmp_path / "open_clip_model.safetensors").write_bytes(b"not a model")
    with pytest.raises(PatternsError, match="open_clip_model_path: cannot load the model"):
        load_clip_target(str(tmp_path), "a prompt")
    with pytest.raises(PatternsError, match="prompt: empty"):
        load_clip_target(str(tmp_path), "  ")


def test_guide_settings_are_checked():
    with pytest.raises(PatternsError, match="steps: expected 1..5000"):
        GuideSettings(steps=0).check()
    with pytest.raises(PatternsError, match="size: expected 16..512"):
        GuideSettings(size=8).check()
