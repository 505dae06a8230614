"""agents.patterns audio features on generated audio with exact onset truth."""

from __future__ import annotations

import tomllib
import tracemalloc

import numpy as np
import pytest
from patterns_signals import click_track, sweep, tone, tone_bursts

from agents.patterns.audio_features import extract_features
from agents.patterns.config import CONFIG_PATH, default_config, validate_config
from agents.patterns.errors import PatternsConfigError, PatternsError
from agents.patterns.smoothing import attack_release


def _config(**audio):
    data = tomllib.loads(CONFIG_PATH.read_text())
    data["audio"].update(audio)
    return validate_config(data)


def _peaks(x: np.ndarray, thr: float = 0.5) -> np.ndarray:
    """Frames where x rises through thr (the first frame of each event)."""
    above = x >= thr
    return np.nonzero(above & ~np.concatenate([[False], above[:-1]]))[0]


@pytest.mark.parametrize(("sr", "fps"), [(44100, 30.0), (48000, 24.0), (22050, 60.0), (8000, 12.0),
                                         (192000, 25.0)])
def test_click_onsets_land_on_their_exact_frame(sr, fps):
    rng = np.random.default_rng(int(sr + fps))
    onsets = np.sort(rng.uniform(0.2, 5.8, 9))
    onsets = onsets[np.concatenate([[True], np.diff(onsets) > 0.25])]
    feats = extract_features(click_track(onsets, sr, 6.0)[None], sr, fps)
    truth = np.floor(onsets * fps).astype(int)
    found = _peaks(feats.raw_onset)
    assert found.size == truth.size, (found, truth)
    assert np.abs(found - truth).max() <= 1 and np.mean(found == truth) >= 0.75, (found, truth)


def test_the_first_frame_reacts_like_any_other():
    sr, fps = 44100, 30.0
    feats = extract_features(click_track(np.array([0.0, 1.0, 2.0]), sr, 3.0)[None], sr, fps)
    assert feats.raw_onset[0] == pytest.approx(feats.raw_onset[30], abs=0.15) and feats.raw_onset[0] > 0.8
    # smoothing starts at the first value: frame 0 is not attenuated
    assert feats.values["onset"][0] == pytest.approx(feats.raw_onset[0])
    assert feats.values["rms"][0] > 0.5


@pytest.mark.parametrize(("duration", "fps", "frames"), [(30.0, 30.0, 900), (30.0, 20.0, 600), (1.0, 120.0, 120),
                                                         (2.5, 1.0, 3), (0.5, 24.0, 12)])
def test_frame_count_is_duration_times_fps(duration, fps, frames):
    sr = 8000
    feats = extract_features(tone(440, sr, duration)[None], sr, fps)
    assert feats.n_frames == frames
    for v in [*feats.values.values(), feats.chroma]:
        assert v.shape[0] == frames and np.isfinite(v).all()


def test_tempo_and_beats_of_a_click_track():
    sr, fps, bpm = 22050, 30.0, 128.0
    onsets = np.arange(0.3, 12.0, 60 / bpm)
    feats = extract_features(click_track(onsets, sr, 12.0)[None], sr, fps)
    assert feats.tempo_bpm == pytest.approx(bpm, rel=0.03)
    beats = feats.beat_times
    near = np.abs(beats[:, None] - onsets[None, :]).min(axis=1)
    assert beats.size >= onsets.size - 2 and np.median(near) <= 1 / fps
    assert feats.values["beat"][np.floor(onsets[5] * fps).astype(int)] == pytest.approx(1.0, abs=0.35)


def test_bands_centroid_and_chroma_follow_the_tone():
    sr, fps = 44100, 30.0
    x = np.concatenate([tone(80, sr, 1.0), tone(1000, sr, 1.0), tone(9000, sr, 1.0), tone(440, sr, 1.0)])
    f = extract_features(x[None], sr, fps)
    seg = [slice(5, 25), slice(35, 55), slice(65, 85), slice(95, 115)]
    v = f.values
    assert v["low"][seg[0]].mean() > 0.8 and v["low"][seg[1]].mean() < 0.2
    assert v["mid"][seg[1]].mean() > 0.8 and v["mid"][seg[2]].mean() < 0.2
    assert v["high"][seg[2]].mean() > 0.8 and v["high"][seg[0]].mean() < 0.2
    c = [v["centroid"][s].mean() for s in seg[:3]]
    assert c[0] < c[1] < c[2]
    assert int(np.argmax(f.chroma[seg[3]].mean(axis=0))) == 9  # A


def test_tone_bursts_give_onsets_and_a_sweep_gives_none_after_its_start():
    sr, fps = 32000, 30.0
    onsets = np.array([0.5, 1.25, 2.0, 2.9, 3.6])
    f = extract_features(tone_bursts(onsets, np.array([220, 330, 440, 660, 880.0]), sr, 4.5)[None], sr, fps)
    found = _peaks(f.raw_onset)
    assert found.size == 5 and np.abs(found - np.floor(onsets * fps)).max() <= 1, found
    s = extract_features(sweep(sr, 4.0)[None], sr, fps)
    assert s.raw_onset[10:].max() < 0.5  # a smooth sweep has no onset after its start


def test_silence_gives_defined_zero_features():
    f = extract_features(np.zeros((2, 48000), np.float32), 48000, 30.0)
    assert f.n_frames == 30 and f.tempo_bpm == 0.0 and f.beat_times.size == 0
    for v in [*f.values.values(), f.chroma]:
        assert np.isfinite(v).all() and not v.any()


def test_channel_count_does_not_change_the_features():
    sr = 22050
    mono = click_track(np.array([0.3, 0.9, 1.4]), sr, 2.0)
    a = extract_features(mono[None], sr, 30.0)
    for ch in (2, 6):
        b = extract_features(np.repeat(mono[None], ch, axis=0)[None], sr, 30.0)  # [1, C, T]
        assert b.channels == ch
        for k in a.values:
            assert np.allclose(a.values[k], b.values[k], atol=1e-5), k


def test_one_sample_clip_and_clipped_audio():
    f = extract_features(np.ones((1, 1), np.float32), 8000, 30.0)
    assert f.n_frames == 1 and all(np.isfinite(v).all() for v in f.values.values())
    clipped = np.clip(tone(200, 16000, 1.0, amp=4.0), -1, 1)
    g = extract_features(clipped[None], 16000, 30.0)
    assert g.n_frames == 30 and all(np.isfinite(v).all() for v in g.values.values())


@pytest.mark.parametrize(("wave", "sr", "fps", "match"), [
    (np.array([[0.0, np.nan, 0.0]]), 8000, 30.0, "audio: non-finite sample"),
    (np.zeros((1, 100)), 4000, 30.0, "audio: sample_rate 4000"),
    (np.zeros((1, 100)), 200000, 30.0, "audio: sample_rate 200000"),
    (np.zeros((1, 100)), 8000.5, 30.0, "audio: sample_rate must be an integer"),
    (np.zeros((1, 0)), 8000, 30.0, "audio: the clip has no samples"),
    (np.zeros((2, 1, 100)), 8000, 30.0, "audio: a batch of 2"),
    (np.zeros((9, 100)), 8000, 30.0, "audio: 9 channels"),
    (np.zeros((1, 100)), 8000, 0.5, "fps: expected"),
    (np.zeros((1, 100)), 8000, 121.0, "fps: expected"),
    (np.zeros((1, 100)), 8000, float("nan"), "fps: expected"),
])
def test_bad_input_is_a_one_line_error(wave, sr, fps, match):
    with pytest.raises(PatternsError, match=match) as err:
        extract_features(wave, sr, fps)
    assert "\n" not in str(err.value)


def test_a_clip_over_the_limit_is_refused_before_any_work():
    cfg = _config(max_duration_s=2.0)
    with pytest.raises(PatternsError, match=r"longer than the limit of 2 s .*audio.max_duration_s"):
        extract_features(np.zeros((1, 8000 * 3), np.float32), 8000, 30.0, cfg)
    assert default_config().audio["max_duration_s"] >= 3600  # an hour is accepted by default


def test_chunked_analysis_equals_one_pass():
    sr = 22050
    rng = np.random.default_rng(3)
    x = click_track(np.sort(rng.uniform(0, 9.5, 20)), sr, 10.0) + 0.05 * tone(300, sr, 10.0)
    a = extract_features(x[None], sr, 30.0, _config(chunk_s=1.0))
    b = extract_features(x[None], sr, 30.0, _config(chunk_s=600.0))
    for k in a.values:
        assert np.allclose(a.values[k], b.values[k], atol=1e-4), k
    assert np.allclose(a.chroma, b.chroma, atol=1e-4)


def test_ten_minute_track_stays_bounded_in_memory():
    sr, fps = 22050, 30.0
    x = (0.1 * np.random.default_rng(0).standard_normal(sr * 600)).astype(np.float32)[None]  # 53 MB input
    tracemalloc.start()
    f = extract_features(x, sr, fps)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert f.n_frames == 18000
    assert peak < 120e6, f"peak {peak / 1e6:.0f} MB"


def test_attack_release_rises_and_falls_at_their_rates():
    x = np.r_[np.zeros(5), np.ones(10), np.zeros(10)]
    y = attack_release(x, 0.0, 0.1, 30.0)
    assert y[5] == 1.0 and 0 < y[15] < 1 and np.all(np.diff(y[15:]) < 0)
    slow = attack_release(x, 0.2, 0.0, 30.0)
    assert 0 < slow[5] < 0.5 and slow[15] == 0.0
    assert attack_release(np.ones(4), 0.5, 0.5, 30.0)[0] == 1.0  # state starts at the first value


@pytest.mark.parametrize(("section", "key", "value", "match"), [
    ("audio", "window_s", 5.0, "patterns key audio.window_s: expected a number in"),
    ("audio", "bogus", 1.0, "patterns key audio.bogus: unknown key"),
    ("render", "hidden_layers", 2.5, "patterns key render.hidden_layers: expected an integer"),
    ("beats", "min_bpm", 250.0, "patterns key beats.min_bpm: must be below"),
])
def test_config_errors_name_the_key(section, key, value, match):
    data = tomllib.loads(CONFIG_PATH.read_text())
    data[section][key] = value
    with pytest.raises(PatternsConfigError, match=match):
        validate_config(data)
