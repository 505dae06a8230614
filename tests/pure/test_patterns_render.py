"""agents.patterns CPPN renderer: patterns, palettes, presets, transitions, chunking, determinism, limits."""

from __future__ import annotations

import tomllib

import numpy as np
import pytest
import torch
from patterns_signals import click_track

from agents.patterns.audio_features import extract_features
from agents.patterns.config import (
    CONFIG_PATH,
    PATTERNS,
    PRESETS_PATH,
    PatternsConfigError,
    default_config,
    validate_config,
    validate_presets,
)
from agents.patterns.cppn import random_weights, slerp
from agents.patterns.errors import PatternsError
from agents.patterns.palettes import delta_e_to_palette, named_palette, palette_from_image, palette_names
from agents.patterns.render import check_frame_range, make_renderer, render_chunks, schedule_for

SR, FPS = 22050, 30.0
ONSETS = np.array([0.4, 1.1, 1.7, 2.3])


@pytest.fixture(scope="module")
def feats():
    return extract_features(click_track(ONSETS, SR, 3.0)[None], SR, FPS)


def _render(feats, preset="pulse", size=(32, 24), seed=0, config=None, start=0, stop=None, **kw):
    r = make_renderer(preset, *size, seed, config=config, **kw)
    s = schedule_for(r, feats)
    return torch.cat(list(render_chunks(r, s, start, stop if stop is not None else feats.n_frames)))


def _config(**render):
    data = tomllib.loads(CONFIG_PATH.read_text())
    data["render"].update(render)
    return validate_config(data)


@pytest.mark.parametrize("pattern", PATTERNS)
def test_every_pattern_renders_finite_colours_of_the_asked_size(feats, pattern):
    frames = _render(feats, pattern=pattern, stop=6)
    assert frames.shape == (6, 24, 32, 3) and torch.isfinite(frames).all()
    assert frames.min() >= 0 and frames.max() <= 1 and frames.std() > 0.02


def test_same_seed_same_frames_other_seed_other_frames(feats):
    a, b, c = _render(feats, seed=7, stop=5), _render(feats, seed=7, stop=5), _render(feats, seed=8, stop=5)
    assert torch.equal(a, b) and not torch.allclose(a, c)


def test_chunked_rendering_equals_one_chunk(feats):
    small = _render(feats, config=_config(max_pixels_per_chunk=4096), stop=12)  # 5 frames per chunk
    big = _render(feats, stop=12)
    assert torch.allclose(small, big, atol=1e-6)


def test_the_picture_changes_most_on_onsets(feats):
    frames = _render(feats, preset="strobe", size=(48, 48)).numpy()
    change = np.r_[0.0, np.abs(np.diff(frames, axis=0)).mean(axis=(1, 2, 3))]
    onset_frames = np.floor(ONSETS * FPS).astype(int)
    others = np.setdiff1d(np.arange(5, frames.shape[0]), np.r_[onset_frames, onset_frames + 1, onset_frames - 1])
    assert change[onset_frames].min() > 3 * np.median(change[others])


def test_rendered_pixels_stay_on_the_palette(feats):
    frames = _render(feats, size=(40, 40), stop=4, palette="ocean").numpy()
    assert delta_e_to_palette(frames, named_palette("ocean")) < 2.0
    assert delta_e_to_palette(frames, named_palette("ember")) > 10.0


def test_a_palette_taken_from_a_reference_image():
    img = np.zeros((20, 20, 3))
    img[:, :10] = [0.9, 0.1, 0.1]
    img[:, 10:] = [0.1, 0.1, 0.8]
    lut = palette_from_image(img)
    # the darker colour first (ordered by lightness), both recovered
    assert np.allclose(lut[0], [0.1, 0.1, 0.8], atol=0.02) and np.allclose(lut[-1], [0.9, 0.1, 0.1], atol=0.02)
    flat = palette_from_image(np.full((8, 8, 3), 0.5))
    assert np.allclose(flat, 0.5, atol=0.01)
    with pytest.raises(PatternsError, match="palette_image: expected"):
        palette_from_image(np.zeros((4, 4)))


def test_beats_switch_weight_sets(feats):
    r = make_renderer("strobe", 16, 16, 0)
    s = schedule_for(r, feats)
    beats = feats.beat_frames()
    assert beats.size >= 3
    first = beats[int(r.preset.nums["beats_per_switch"]) - 1]
    assert s.blend[first] > 0 and s.set_a[first] != s.set_b[first]
    assert np.all(s.blend[:first] == 0) and np.all(s.set_a[:first] == 0)


def test_slerp_ends_are_the_two_sets_and_keeps_the_norm():
    gen = torch.Generator().manual_seed(0)
    cfg = default_config()
    a, b = random_weights(cfg, gen), random_weights(cfg, gen)
    assert torch.allclose(slerp(a, b, 0.0).flat(), a.flat(), atol=1e-5)
    assert torch.allclose(slerp(a, b, 1.0).flat(), b.flat(), atol=1e-4)
    mid = float(slerp(a, b, 0.5).flat().norm())
    assert mid == pytest.approx(0.5 * float(a.flat().norm() + b.flat().norm()), rel=1e-4)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"width": 15}, r"width: expected an integer number of pixels in \[16, 4096\], got 15"),
    ({"height": 4097}, r"height: expected an integer number of pixels in \[16, 4096\], got 4097"),
    ({"pattern": "plasma"}, "pattern: unknown pattern 'plasma'"),
    ({"palette": "sepia"}, "palette: unknown palette 'sepia'"),
    ({"preset": "disco"}, "preset: unknown preset 'disco'"),
])
def test_bad_render_inputs_are_one_line_errors(kwargs, match):
    args = {"preset": "pulse", "width": 16, "height": 16, "seed": 0} | kwargs
    with pytest.raises(PatternsError, match=match) as err:
        make_renderer(args.pop("preset"), args.pop("width"), args.pop("height"), args.pop("seed"), **args)
    assert "\n" not in str(err.value)


def test_a_batch_over_the_memory_limit_asks_for_a_range(feats):
    r = make_renderer("pulse", 4096, 4096, 0)
    with pytest.raises(PatternsError, match="render a range with start_frame/frame_count"):
        check_frame_range(r, 18000, 0, 0)
    assert check_frame_range(r, 18000, 100, 10) == (100, 110)
    with pytest.raises(PatternsError, match="start_frame: expected 0..17999"):
        check_frame_range(r, 18000, 18000, 1)


@pytest.mark.parametrize(("edit", "match"), [
    (lambda p: p["presets"]["pulse"].update(pattern="plasma"), "preset key presets.pulse.pattern"),
    (lambda p: p["presets"]["pulse"]["z_gains"].update(loudness=1.0), "presets.pulse.z_gains.loudness: unknown"),
    (lambda p: p["presets"]["calm"].update(layer_freq=[1.0]), "presets.calm.layer_freq: expected 4 numbers"),
    (lambda p: p["presets"]["strobe"].update(zoom_gain=9.0), "presets.strobe.zoom_gain: expected a number"),
    (lambda p: p["presets"]["strobe"].update(palette="sepia"), "presets.strobe.palette: expected one of"),
])
def test_preset_errors_name_the_key(edit, match):
    data = tomllib.loads(PRESETS_PATH.read_text())
    edit(data)
    with pytest.raises(PatternsConfigError, match=match):
        validate_presets(data, default_config())


def test_curated_palettes_are_lab_gradients():
    assert {"ember", "ocean", "neon", "forest", "mono"} <= set(palette_names())
    mono = named_palette("mono")
    grey = mono.mean(axis=1)
    assert np.all(np.diff(grey) >= -1e-6) and np.allclose(mono[:, 0], mono[:, 1], atol=1e-3)
