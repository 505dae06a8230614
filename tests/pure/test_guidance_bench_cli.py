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
    assert bench.summary_line("x", vs).endswith("T2 10/10 (target all) -> TARGETS MET")
    line = bench.summary_line("x", vs, anchors=False)
    assert "T2 not tested" in line and "TARGETS MET" not in line.replace("SAVING TARGETS MET", "")
    assert line.endswith("T1 AND SAVING TARGETS MET")
    assert bench.summary_line("x", vs[:1] + [bench.Verdict(0.1, False, True, "")] * 2, anchors=False) \
        .endswith("T1 AND SAVING TARGETS NOT MET")
