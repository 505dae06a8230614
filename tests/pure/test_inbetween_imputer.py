"""Keyframe imputer: keys exact in every mode, keep masks, chunking, the report, line-aware vs dissolve."""

from __future__ import annotations

import numpy as np
import pytest

from agents.inbetween.config import InbetweenConfigError, default_config, validate
from agents.inbetween.imputer import impute, iter_chunks, keep_mask, prepare
from agents.inbetween.metrics import chamfer, f_score, grey_share, hausdorff, ink_field
from agents.inbetween.report import Reporter
from bench.inbetween_figures import figure_sequence


@pytest.fixture(scope="module")
def figure() -> list[np.ndarray]:
    return figure_sequence(17, 192, width=2)


@pytest.mark.parametrize("mode", ["hold", "dissolve", "flow", "line_aware", "line_aware_tone", "external"])
def test_keys_come_out_bit_identical(figure: list[np.ndarray], mode: str) -> None:
    idx = [0, 5, 16]
    keys = [figure[i] + np.float32(0.0) for i in idx]
    keys[1][3, 3] = np.float32(0.123456789)  # an odd value no interpolation would reproduce
    ext = [np.full_like(figure[0], 0.5) for _ in figure] if mode == "external" else None
    out = impute(prepare(keys, idx, 17, mode, external=ext))
    assert out.shape == (17, 192, 192, 3)
    for j, f in enumerate(idx):
        assert np.array_equal(out[f], keys[j])
    if mode == "external":
        assert np.all(out[1] == 0.5)
    if mode == "hold":
        assert np.array_equal(out[3], keys[0])


def test_frames_outside_the_keys_hold_the_nearest_key(figure: list[np.ndarray]) -> None:
    out = impute(prepare([figure[2], figure[6]], "2,6", 9, "dissolve"))
    assert np.array_equal(out[0], figure[2]) and np.array_equal(out[8], figure[6])


def test_chunks_are_bounded_and_ordered(figure: list[np.ndarray]) -> None:
    req = prepare([figure[0], figure[16]], "0,16", 17, "dissolve")
    n = int(req.config.limits["chunk_frames"])
    starts = []
    for start, chunk in iter_chunks(req):
        assert len(chunk) <= n
        starts.append(start)
    assert starts == list(range(0, 17, n))


def test_keep_masks_hard_and_soft() -> None:
    hard = keep_mask([0, 4, 10], 11, soft=False)
    assert hard.tolist() == [0, 1, 1, 1, 0, 1, 1, 1, 1, 1, 0]
    soft = keep_mask([0, 4, 10], 11, soft=True)
    cfg = default_config().mask
    assert soft[0] == soft[4] == soft[10] == 0.0
    assert soft[2] == pytest.approx(cfg["soft_max"]) and soft[7] == pytest.approx(cfg["soft_max"])
    assert soft[1] == pytest.approx(cfg["soft_min"] + (cfg["soft_max"] - cfg["soft_min"]) * 0.5)
    assert soft[5] < soft[6] < soft[7] and soft[9] < soft[8]


def test_metrics_on_known_shapes() -> None:
    a = np.ones((100, 100), np.float32)
    b = np.ones((100, 100), np.float32)
    a[:, 40] = 0.0
    b[:, 43] = 0.0
    fa, fb = ink_field(a), ink_field(b)
    assert chamfer(fa, fb) == pytest.approx(3.0 / np.hypot(100, 100), rel=1e-3)
    assert chamfer(fa, fa) == 0.0
    assert hausdorff(fa, fb) == pytest.approx(3.0, abs=1e-3)
    assert f_score(fa, fb, 2.0) == 0.0 and f_score(fa, fb, 3.0) == 1.0
    grey = a.copy()
    grey[:, 60] = 0.5
    assert grey_share(grey, 1.0, 0.0, 0.2, 0.8) == pytest.approx(0.5)


def test_line_aware_beats_cross_dissolve_on_chamfer(figure: list[np.ndarray]) -> None:
    idx = [0, 4, 8, 12, 16]
    keys = [figure[i] for i in idx]
    held = [i for i in range(17) if i not in idx]
    scores = {}
    for mode in ("dissolve", "line_aware", "line_aware_tone"):
        out = impute(prepare(keys, idx, 17, mode))
        scores[mode] = np.mean([chamfer(ink_field(out[i]), ink_field(figure[i])) for i in held])
    assert scores["line_aware"] < 0.7 * scores["dissolve"], scores
    assert scores["line_aware_tone"] < 0.7 * scores["dissolve"], scores


def test_report_flags_ghosts_of_a_dissolve(figure: list[np.ndarray]) -> None:
    idx = [0, 8]
    req = prepare([figure[0], figure[8]], idx, 9, "dissolve")
    rep = Reporter(req, keep_mask(idx, 9, soft=True), line_quality=False)
    for i, frame in enumerate(impute(req)):
        rep.add(i, frame)
    result = result_dict = rep.result().to_dict()
    assert result["frames"][0]["is_key"] and result["frames"][0]["unsafe"] == []
    assert result_dict["frames"][4]["grey_share"] > 0.5
    assert 4 in result["unsafe_frames"]
    la = prepare([figure[0], figure[8]], idx, 9, "line_aware")
    rep2 = Reporter(la, keep_mask(idx, 9, soft=True), line_quality=True)
    for i, frame in enumerate(impute(la)):
        rep2.add(i, frame)
    mid = rep2.result().frames[4]
    assert mid.grey_share < 0.05 and mid.broken is not None


def test_config_errors_name_the_key() -> None:
    import tomllib

    from agents.inbetween.config import DEFAULT_PATH

    data = tomllib.loads(DEFAULT_PATH.read_text())
    data["flow"]["near_key_bias"] = -1
    with pytest.raises(InbetweenConfigError, match=r"^inbetween key flow.near_key_bias: expected a number in"):
        validate(data)
    data = tomllib.loads(DEFAULT_PATH.read_text())
    data["mask"]["soft_min"], data["mask"]["soft_max"] = 0.9, 0.5
    with pytest.raises(InbetweenConfigError, match=r"^inbetween key mask.soft_min"):
        validate(data)
    data = tomllib.loads(DEFAULT_PATH.read_text())
    data["limits"]["typo"] = 1
    with pytest.raises(InbetweenConfigError, match=r"^inbetween key limits.typo: unknown key"):
        validate(data)
