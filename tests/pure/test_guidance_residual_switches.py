"""The residual early stop's two optional conditions (tunables early_stop_residual_unguided and
early_stop_residual_history): each one holds a stop that the plain rule takes, and each is validated."""

from __future__ import annotations

import pytest
import torch

from agents.guidance import EarlyExit, EarlyExitSettings, GuidanceController, GuidanceInputError, GuidanceSettings

SIGMAS = (1.0, 0.5, 0.25, 0.12)


def _residual(**kw: int) -> EarlyExitSettings:
    return EarlyExitSettings(tolerance=0.1, patience=1, min_fraction=0.0, rule="residual", **kw)


def test_history_holds_a_stop_while_the_estimate_still_moves() -> None:
    # every call's point sits on its own estimate (residual 0), but the estimate jumps by 30 % a call,
    # as a multistep sampler's extrapolated trend moves it; then it settles
    ds = [torch.full((2, 4), v) for v in (1.0, 1.3, 1.69, 1.70)]
    plain, hist = EarlyExit(_residual(history=0.0)), EarlyExit(_residual(history=0.1))
    assert [plain.update(d, s, 0.9, x=d.clone()) for d, s in zip(ds, SIGMAS, strict=True)][0]
    assert [hist.update(d, s, 0.9, x=d.clone()) for d, s in zip(ds, SIGMAS, strict=True)] == \
        [False, False, False, True]  # the first call has nothing to compare with: never calm


def test_history_reads_each_item_not_the_batch() -> None:
    # one item of four moves by 20 %: the batch's norm moves by under 10 %, the item's by more
    d0 = torch.ones(4, 4)
    d1 = d0.clone()
    d1[2] *= 1.2
    e = EarlyExit(_residual(history=0.1))
    assert not e.update(d0, 1.0, 0.9, x=d0)
    assert not e.update(d1, 0.5, 0.9, x=d1)
    assert e.last_change == pytest.approx(0.2, rel=1e-5)  # history = tolerance: the change itself
    loose = EarlyExit(_residual(history=0.4))  # allowed to move by 40 %: scaled onto the tolerance's 0.1
    assert not loose.update(d0, 1.0, 0.9, x=d0)
    assert loose.update(d1, 0.5, 0.9, x=d1)
    assert loose.last_change == pytest.approx(0.05, rel=1e-5)


def test_heuns_second_call_refreshes_the_history() -> None:
    e = EarlyExit(_residual(history=0.1))
    a = torch.ones(1, 3)
    assert not e.update(a, 1.0, 0.9, x=a)
    assert not e.update(a * 1.5, 1.0, 0.9, x=a * 1.5)  # same sigma: the corrector's newer value
    assert e.update(a * 1.52, 0.5, 0.9, x=a * 1.52)  # compared with 1.5, not 1.0


def test_unguided_only_holds_on_guided_calls() -> None:
    d = torch.ones(2, 4)
    free, held = EarlyExit(_residual(unguided_only=0)), EarlyExit(_residual(unguided_only=1))
    assert free.update(d, 1.0, 0.9, x=d, guided=True)
    assert not held.update(d, 1.0, 0.9, x=d, guided=True)
    assert held.update(d, 0.5, 0.9, x=d, guided=False)


def test_the_controller_tells_the_stop_whether_the_call_was_guided() -> None:
    s = GuidanceSettings(schedule="constant", skip_below=0.0, quality_adjust=False,
                         early_exit=_residual(unguided_only=1))
    c = GuidanceController(s)
    x = torch.ones(2, 4)
    for base, sigma in ((5.0, 1.0), (5.0, 0.5), (1.0, 0.25)):  # base 1: the call runs without guidance
        plan = c.begin(base, sigma, 0.9)
        c.end(x, x.clone(), x.clone() if plan.uncond else None, x.clone() if plan.uncond else None, sigma, 0.9, 0.9)
        assert (c.stopped_at_sigma is not None) == (base == 1.0)  # only the unguided call may stop the run


@pytest.mark.parametrize("field,bad", [("unguided_only", 2), ("unguided_only", -1), ("unguided_only", True),
                                       ("history", -0.1), ("history", 11.0), ("history", float("nan")),
                                       ("history", True), ("history", "0.1")])
def test_bad_switch_values_name_the_tunable(field: str, bad: object) -> None:
    name = {"unguided_only": "early_stop_residual_unguided", "history": "early_stop_residual_history"}[field]
    with pytest.raises(GuidanceInputError, match=name):
        EarlyExitSettings(rule="residual", **{field: bad})
