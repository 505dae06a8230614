"""The guidance gap's window (controller._gap_latch): unguided before the gap is predicted to arm, guided
while it is at or over the cutoff, off once it falls; a gap that peaks under the cutoff turns guidance off
after its peak. Driven call by call with estimates built to give an exact gap, so every decision is known."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch

from agents.guidance import GuidanceController, GuidanceSettings
from agents.guidance.controller import guidance_gap
from agents.guidance.data import tunable

CUT = 0.05


def _estimates(gap: float, n: int = 16) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """x, D_cond, D_uncond whose residual guidance gap is exactly `gap` (one batch item)."""
    x = torch.zeros(1, n)
    cond = torch.ones(1, n)  # ||x - D_cond|| = sqrt(n)
    uncond = cond.clone()
    uncond[0, 0] += gap * n ** 0.5
    return x, cond, uncond


def _run(gaps_at: list[tuple[float, float]], **kw: Any) -> list[bool]:
    """Feed (sigma, gap) per call; return whether each call ran the unconditional pass."""
    return _controller(gaps_at, **kw)[1]


def _controller(gaps_at: list[tuple[float, float]], **kw: Any) -> tuple[GuidanceController, list[bool]]:
    s = GuidanceSettings(schedule="constant", skip_below=0.0, cfg_min=0.0, gap_cutoff=CUT, **kw)
    c = GuidanceController(s)
    unconds = []
    for i, (sigma, gap) in enumerate(gaps_at):
        following = gaps_at[i + 1][0] if i + 1 < len(gaps_at) else 0.0  # the step ends at the next call's sigma
        plan = c.begin(4.0, sigma, min(sigma / 20.0, 1.0), next_sigma=following)
        unconds.append(plan.uncond)
        x, cond, uncond = _estimates(gap)
        assert guidance_gap(x, cond, uncond) == pytest.approx(gap, rel=1e-4)
        c.end(x, cond, cond if plan.uncond else None, uncond if plan.uncond else None, sigma, 0.5, 0.5)
    return c, unconds


def test_an_armed_gap_guides_until_it_falls_under_the_cutoff():
    # the first gap (0.06) is already over the cutoff: no wait; with one close call, off after the first call under it
    seq = [(20.0, 0.06), (10.0, 0.2), (5.0, 0.1), (2.0, 0.04), (1.0, 0.2), (0.5, 0.2)]
    assert _run(seq, gap_close_calls=1) == [True, True, True, True, False, False]


def test_an_armed_gap_closes_only_after_gap_close_calls_calls_in_a_row_under_the_cutoff():
    n = int(tunable("gap_close_calls"))
    assert GuidanceSettings(gap_cutoff=CUT).gap_close_calls == n >= 2
    # a dip of one call under the cutoff (a batch mean with a few items still being decided) keeps guidance on
    dip = [(20.0, 0.06), (10.0, 0.04), (5.0, 0.1), (2.0, 0.2), (1.0, 0.2)]
    assert _run(dip) == [True] * 5
    assert _run(dip, gap_close_calls=1) == [True, True, False, False, False]
    # n calls in a row under it close the window after the n-th
    fall = [(20.0, 0.06), (10.0, 0.2)] + [(5.0 / (i + 1), 0.01) for i in range(n)] + [(0.1, 0.2), (0.05, 0.2)]
    assert _run(fall) == [True] * (2 + n) + [False, False]
    # one call fewer under it than required: the gap rising again re-arms the count, so the window stays open
    assert _run(fall, gap_close_calls=n + 1) == [True] * (4 + n)


def test_before_arming_the_run_waits_down_to_the_predicted_noise_level():
    # first call: gap 0.01 at sigma 20 -> grows as 1/sigma -> reaches 0.05 at sigma 4: no guidance above 4;
    # the call that measures a gap under the cutoff is still guided, the next is not
    # (without the lookahead: each call waits by its own sigma; the lookahead test below has the step's end)
    seq = [(20.0, 0.01), (10.0, 0.02), (6.0, 0.03), (3.9, 0.06), (2.0, 0.1), (1.0, 0.01), (0.5, 0.1)]
    assert _run(seq, gap_wait_margin=1.0, gap_close_calls=1, gap_wait_lookahead=0) == \
        [True, False, False, True, True, True, False]
    # the shipped margin (guidance.toml) resumes at margin x 4: every call above that level waits
    m = tunable("gap_wait_margin")
    assert GuidanceSettings(gap_cutoff=CUT).gap_wait_margin == m >= 1.0
    expected = [True] + [sigma <= 4.0 * m for sigma, _ in seq[1:4]] + [True, True, False]
    assert _run(seq, gap_close_calls=1, gap_wait_lookahead=0) == expected


def test_a_margin_resumes_guidance_earlier_and_a_huge_one_guides_from_the_start():
    seq = [(20.0, 0.01), (10.0, 0.02), (6.0, 0.03), (3.9, 0.06), (2.0, 0.1)]
    assert _run(seq, gap_wait_margin=2.0, gap_wait_lookahead=0) == [True, False, True, True, True]  # waits above 8
    assert _run(seq, gap_wait_margin=1000.0) == [True] * 5
    assert _run(seq, gap_wait_margin=math.inf) == [True] * 5


def test_the_lookahead_guides_the_step_that_crosses_the_wait_level():
    # gap 0.01 at sigma 20 predicts the cutoff at sigma 4; margin 2: wait above sigma 8. A short run's step from
    # 12 lands at 3: without the lookahead it is unguided (the levels 8..3 pass unguided), with it guided
    short = [(20.0, 0.01), (12.0, 0.02), (3.0, 0.06), (0.5, 0.1)]
    assert GuidanceSettings(gap_cutoff=CUT).gap_wait_lookahead == tunable("gap_wait_lookahead") == 1  # shipped on
    assert _run(short, gap_wait_margin=2.0, gap_wait_lookahead=0) == [True, False, True, True]
    assert _run(short, gap_wait_margin=2.0, gap_wait_lookahead=1) == [True, True, True, True]
    # a long run's step that ends above the level still waits: the lookahead costs at most the crossing step
    long = [(20.0, 0.01), (16.0, 0.012), (12.0, 0.017), (9.0, 0.022), (7.0, 0.03), (5.0, 0.05), (3.0, 0.08)]
    assert _run(long, gap_wait_margin=2.0, gap_wait_lookahead=0) == [True, False, False, False, True, True, True]
    assert _run(long, gap_wait_margin=2.0, gap_wait_lookahead=1) == [True, False, False, True, True, True, True]
    # an unknown schedule (next_sigma None) falls back to the call's own sigma
    c = GuidanceController(GuidanceSettings(schedule="constant", skip_below=0.0, cfg_min=0.0, gap_cutoff=CUT,
                                            gap_wait_margin=2.0, gap_wait_lookahead=1))
    x, cond, uncond = _estimates(0.01)
    c.end(x, cond, cond, uncond, 20.0, 1.0, 0.0)
    assert not c.begin(4.0, 12.0, 0.6).uncond
    assert c.begin(4.0, 12.0, 0.6, next_sigma=3.0).uncond


def test_the_effect_floor_ends_guidance_that_no_longer_moves_the_estimate():
    # _estimates: ||D_c|| = 4, ||D_c - D_u|| = 4 gap, so at scale 4 guidance moves the estimate by 3 x gap
    seq = [(20.0, 0.1), (10.0, 0.2), (5.0, 0.07), (2.0, 0.2), (1.0, 0.2)]  # never under the cutoff 0.05
    assert _run(seq) == [True] * 5  # off by default (guidance.toml)
    c, unconds = _controller(seq, gap_effect_floor=0.25)
    assert unconds == [True, True, True, False, False]  # 3 x 0.07 = 0.21 < 0.25 at sigma 5
    assert "under 0.25 of its size (0.21) at sigma 5" in c.gap_note()
    # before the window opens (the gap under the cutoff) the floor does not act: the wait and arming decide
    assert _run([(20.0, 0.01), (10.0, 0.01)], gap_effect_floor=0.9, gap_wait_margin=1000.0) == [True, True]


def test_a_gap_that_peaks_under_the_cutoff_turns_guidance_off_after_its_peak():
    frac = tunable("gap_peak_fraction")
    assert 0.0 < frac < 1.0
    peak = 0.04  # never reaches the cutoff
    seq = [(20.0, 0.04), (10.0, 0.03), (5.0, peak * frac * 1.5), (2.0, peak * frac * 0.5), (1.0, 0.001)]
    assert _run(seq) == [True, True, True, True, False]
    # with the peak rule off (fraction 0) it guides to the end, as before the rule
    assert _run(seq, gap_peak_fraction=0.0) == [True] * 5


def test_a_gap_that_stays_flat_under_the_cutoff_keeps_guiding():
    # overlapping classes whose gap plateaus: neither armed nor fallen from a peak -> guidance stays on
    seq = [(20.0, 0.045), (10.0, 0.04), (5.0, 0.042), (2.0, 0.041), (1.0, 0.04)]
    assert _run(seq) == [True] * 5


def test_the_window_tunables_are_checked_by_name():
    with pytest.raises(ValueError, match="gap_peak_fraction"):
        GuidanceSettings(gap_cutoff=CUT, gap_peak_fraction=1.5)
    for bad_calls in (0, 1.5, True):
        with pytest.raises(ValueError, match="gap_close_calls"):
            GuidanceSettings(gap_cutoff=CUT, gap_close_calls=bad_calls)
    for bad in (0.5, math.nan):
        with pytest.raises(ValueError, match="gap_wait_margin"):
            GuidanceSettings(gap_cutoff=CUT, gap_wait_margin=bad)
    for bad_floor in (-0.1, 1.5, math.nan):
        with pytest.raises(ValueError, match="gap_effect_floor"):
            GuidanceSettings(gap_cutoff=CUT, gap_effect_floor=bad_floor)
    for bad_look in (2, -1, 0.5, True):
        with pytest.raises(ValueError, match="gap_wait_lookahead"):
            GuidanceSettings(gap_cutoff=CUT, gap_wait_lookahead=bad_look)


def test_the_schedule_output_says_what_the_window_did():
    c, _ = _controller([(20.0, 0.01), (10.0, 0.02), (6.0, 0.03), (3.9, 0.06), (2.0, 0.1), (1.0, 0.01), (0.5, 0.1)],
                       gap_wait_margin=1.0, gap_close_calls=1)
    note = c.summary()["gap_note"]
    # with the lookahead the call at sigma 6 is guided: its step ends at 3.9, under the wait level 4
    assert note == ("unguided above sigma 4 (1 call); guided from sigma 20 to 1; "
                    "then off: the gap fell under the cutoff at sigma 1")
    c, _ = _controller([(20.0, 0.06), (10.0, 0.2), (5.0, 0.01), (2.0, 0.01), (1.0, 0.2)], gap_close_calls=2)
    assert c.gap_note() == ("guided from sigma 20 to 2; "
                            "then off: the gap stayed under the cutoff for 2 calls, to sigma 2")
    c, _ = _controller([(20.0, 0.04), (10.0, 0.03), (5.0, 0.001), (2.0, 0.001)])
    frac = tunable("gap_peak_fraction")
    assert c.gap_note().endswith(f"then off: the gap peaked at 0.04 under the cutoff and fell under {frac:g} of it "
                                 "at sigma 5")
    c, _ = _controller([(20.0, 0.06), (10.0, 0.2)])
    assert c.gap_note() == "guided from sigma 20 to 10; guided to the end: the gap never fell under the cutoff"
    assert GuidanceController(GuidanceSettings()).gap_note() == "guidance gap off"


def test_the_next_scheduled_sigma_is_where_a_calls_step_ends():
    from agents.guidance.noise_level import next_scheduled_sigma

    sigmas = [14.6, 6.0, 2.0, 0.5, 0.0]
    assert next_scheduled_sigma(sigmas, 14.6) == 6.0
    assert next_scheduled_sigma(sigmas, 3.1) == 2.0  # heun's in-between call at 3.1 inside the step 6 -> 2
    assert next_scheduled_sigma(sigmas, 0.5) == 0.0  # the last step ends at sigma 0
    assert next_scheduled_sigma(sigmas, 0.5 * (1 + 1e-9)) == 0.0  # float noise on the host's sigma
    assert next_scheduled_sigma(None, 3.0) is None and next_scheduled_sigma([], 3.0) is None
