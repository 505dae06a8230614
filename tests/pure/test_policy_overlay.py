"""Tier 1: the calibrated policy overlay: validation naming the key, version refusal, fallback to the locked policy."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.policy import load_policy, raw_default_policy
from agents.policy.overlay import (
    MovedValue,
    OverlayError,
    dump_overlay,
    load_with_overlay,
    overlay_policy,
    parse_overlay,
    read_overlay,
)

PROV = {"policy_version": "m4-policy-1", "created_at": "2026-12-01T20:00:00Z", "run_count": 60,
        "first_run": "2026-11-01T00:00:00Z", "last_run": "2026-12-01T00:00:00Z", "tool": "test",
        "heldout": {"model_log_loss": 0.6, "rules_log_loss": 0.69}}


def _write(tmp_path: Path, moved: list[MovedValue], prov: dict | None = None) -> Path:
    p = tmp_path / "overlay.toml"
    p.write_text(dump_overlay(prov or PROV, moved))
    return p


def test_overlay_round_trips_and_moves_only_its_values(tmp_path: Path) -> None:
    moved = [MovedValue("classify.small_below", 0.2, 0.25, "quantile of subject_scale"),
             MovedValue("cases.single_complex.union_strength", [0.5, 0.7], [0.5, 0.75], "model: less lock")]
    path = _write(tmp_path, moved)
    raw = raw_default_policy()
    ov = read_overlay(path, raw)
    assert [m.key for m in ov.moved] == ["classify.small_below", "cases.single_complex.union_strength"]
    assert ov.provenance["heldout"]["model_log_loss"] == 0.6
    pol = load_policy(overlay=path)
    locked = load_policy()
    assert pol.classify["small_below"] == 0.2 and locked.classify["small_below"] == 0.25
    assert pol.cases["single_complex"].bounds["union_strength"] == (0.5, 0.7)
    assert pol.hard_rules == locked.hard_rules and pol.cfg["global_max"] == locked.cfg["global_max"]
    res = load_with_overlay(path)
    assert res.applied and "2 value(s)" in res.note
    assert res.diagnostics()["moved"]["classify.small_below"] == 0.2


@pytest.mark.parametrize("key", ["hard_rules.ip2_abs_max", "cfg.global_max", "limits.cfg", "version",
                                 "hard_rules.ip2_cap1_cfg2", "tunable.classify.small_below"])
def test_hard_keys_are_refused(key: str) -> None:
    raw = raw_default_policy()
    doc = {"provenance": PROV, "moved": [{"key": key, "value": 0.5, "reason": "x"}]}
    with pytest.raises(OverlayError, match=key.replace(".", r"\.") + ".*hard rule"):
        parse_overlay(doc, raw)


@pytest.mark.parametrize(("entry", "match"), [
    ({"key": "classify.nope", "value": 0.5, "reason": "x"}, "classify.nope: not a key"),
    ({"key": "classify.small_below", "value": "big", "reason": "x"}, "classify.small_below: value must be"),
    ({"key": "cases.single_simple.cfg2", "value": 7.5, "reason": "x"}, r"cases.single_simple.cfg2: value must be \["),
    ({"key": "cases.single_simple.steps1", "value": [20, 24], "reason": "x"}, "steps1: not marked tunable"),
    ({"key": "classify.small_below", "value": 0.2, "reason": " "}, "non-empty reason"),
    ({"key": "classify.small_below", "value": float("nan"), "reason": "x"}, "finite number"),
    ({"key": "modifiers.large_union_max_drop", "value": 0.05, "reason": "x"}, "not marked tunable"),
    ({"key": "classify.small_below", "value": 0.05, "reason": "x"}, r"leaves the tunable range \[0.15, 0.35\]"),
])
def test_bad_entries_name_the_key(entry: dict, match: str) -> None:
    with pytest.raises(OverlayError, match=match):
        parse_overlay({"provenance": PROV, "moved": [entry]}, raw_default_policy())


def test_other_policy_version_is_refused_with_reason(tmp_path: Path) -> None:
    old = {**PROV, "policy_version": "m4-policy-0"}
    path = _write(tmp_path, [MovedValue("classify.small_below", 0.2, 0.25, "r")], old)
    with pytest.raises(OverlayError, match="made for policy 'm4-policy-0'.*refused"):
        read_overlay(path, raw_default_policy())
    res = load_with_overlay(path)
    assert not res.applied and "refused" in res.note
    assert res.policy.classify["small_below"] == 0.25  # the locked policy still loads


def test_overlay_that_breaks_the_policy_falls_back(tmp_path: Path) -> None:
    # each value is tunable and in range; the policy validation rejects the result (ip2 floor above ip1 - 0.10)
    path = _write(tmp_path, [MovedValue("cases.single_simple.ip2_weight", [0.4, 0.5], [0.15, 0.5], "r")])
    with pytest.raises(OverlayError, match="cases.single_simple.ip2_weight: lower bound"):
        overlay_policy(raw_default_policy(), read_overlay(path, raw_default_policy()))
    res = load_with_overlay(path)
    assert not res.applied and "cases.single_simple.ip2_weight" in res.note
    assert load_policy(overlay=path).cases["single_simple"].bounds["ip2_weight"] == (0.15, 0.5)


def test_hand_edited_garbage_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[provenance\nnot toml")
    res = load_with_overlay(bad)
    assert not res.applied and "not valid TOML" in res.note
    res = load_with_overlay(tmp_path / "missing.toml")
    assert not res.applied and "no overlay" in res.note
    res = load_with_overlay(None)
    assert not res.applied
