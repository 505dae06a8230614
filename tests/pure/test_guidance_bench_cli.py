"""The guidance benchmark's command-line values: --params/--vary text to option values."""

from __future__ import annotations

import pytest

from bench import bench_guidance_gmm as bench


def test_params_parse_numbers_booleans_and_words() -> None:
    assert bench.parse_params("early_stop=false,gap_cutoff=0.05,early_stop_estimate=spread matched,cap_at_base=True") \
        == {"early_stop": False, "gap_cutoff": 0.05, "early_stop_estimate": "spread matched", "cap_at_base": True}
    assert bench.parse_params("") is None and bench.parse_params(None) is None


@pytest.mark.parametrize("text", ["false", "FALSE", " false "])
def test_a_boolean_is_never_a_string(text: str) -> None:
    # before: 'false' stayed a string and the boolean option refused it
    assert bench.parse_params(f"early_stop={text}") == {"early_stop": False}


def test_without_anchors_the_summary_does_not_claim_t2() -> None:
    # --t1-only runs no anchor, so every configuration's T2 "passes" for want of a rival: not a result
    vs = [bench.Verdict(saving=0.5, t1=True, t2=True, note="") for _ in range(10)]
    assert bench.summary_line("x", vs).endswith("T2 10/10 (target all; 10/10 if an anchor must have strictly "
                                                "better precision) -> TARGETS MET")
    line = bench.summary_line("x", vs, anchors=False)
    assert "T2 not tested" in line and "TARGETS MET" not in line.replace("SAVING TARGETS MET", "")
    assert line.endswith("T1 AND SAVING TARGETS MET")
    assert bench.summary_line("x", vs[:1] + [bench.Verdict(0.1, False, True, "")] * 2, anchors=False) \
        .endswith("T1 AND SAVING TARGETS NOT MET")


def _result(name: str, role: str, evals: float, precision: float, swd_shift: float) -> bench.Result:
    import torch

    boot = torch.linspace(0.0, 0.01, 200) + swd_shift  # a bootstrap cloud around the SWD
    return bench.Result(bench.Method(name, role), evals, precision, float(boot.mean()), boot, 1000, 0.0)


def test_t2_counts_an_anchor_at_equal_precision_the_literal_reading_does_not() -> None:
    static = _result("static cfg", "static", 40.0, 1.0, 0.5)
    me = _result(bench.CANDIDATE, "candidate", 24.0, 1.0, 0.3)
    tie = _result("adaptive guidance cos>=0.99", "anchor", 21.0, 1.0, 0.1)  # fewer evals, same precision, lower SWD
    v = bench.verdict([static, me, tie], bench.CANDIDATE)
    assert not v.t2 and v.t2_literal and "beaten by adaptive guidance" in v.note
    better = _result("interval", "anchor", 24.0, 1.0 + 1e-9, 0.1)
    assert not bench.verdict([static, me, better], bench.CANDIDATE).t2_literal
    costly = _result("interval", "anchor", 30.0, 1.0, 0.1)  # more evaluations: no rival
    assert bench.verdict([static, me, costly], bench.CANDIDATE).t2
