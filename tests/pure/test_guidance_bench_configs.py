"""The guidance benchmark's configuration draws: the written rule, kept apart between tuning and checking."""

from __future__ import annotations

from bench import bench_guidance_configs as configs


def test_the_check_set_draw_is_the_one_the_readme_reports():
    # Every number in the README's guidance section was measured on these draws: a change to the rule (or to
    # the order of its random calls) would silently make them another benchmark.
    cs = configs.check_set()
    assert len(cs) == 24
    assert cs[5].label() == "check05 dpmpp_2m/karras 9 st, base 2.5, dim 4, 3x1 overlap 0.21"
    assert cs[20].label() == "check20 uni_pc/beta 13 st, base 1.5, dim 16, 4x1 separated 1.34"
    assert configs.tune_set()[18].label() == "tune18 dpmpp_3m_sde/exponential 13 st, base 2, dim 4, 5x2 separated 1.16"


def test_the_short_tuning_draw_covers_8_to_12_steps_on_every_sampler():
    short = configs.tune_short_set()
    assert {c.steps for c in short} <= set(range(8, 13))
    assert min(c.steps for c in short) == 8
    assert sorted(c.sampler for c in short) == sorted(configs.SAMPLERS * 2)
    assert {c.overlap for c in short} == {True, False}


def test_no_check_configuration_is_in_a_tuning_set():
    check = configs.check_set()
    tuning = configs.SETS["tune_all"]()
    assert len(tuning) == configs.TUNE_COUNT + configs.TUNE_SHORT_COUNT
    assert not {c.name for c in check} & {c.name for c in tuning}
    # the seed fixes the mixture and the noise: none is shared (a shared one would be check data in disguise)
    assert not {c.seed for c in check} & {c.seed for c in tuning}
