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
