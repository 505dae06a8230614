"""The policy file: the shipped one is complete and valid; broken ones fail naming the key."""

from __future__ import annotations

import copy

import pytest

from agents.policy import PolicyError, default_policy, load_policy, parse_policy, raw_default_policy


def test_shipped_policy_holds_the_seed_constants():
    p = default_policy()
    assert p.checkpoint == "animagine-xl-3.1.safetensors"
    assert (p.cfg["global_min"], p.cfg["global_max"]) == (7.0, 10.0)
    caps = {name: (c.cfg1_eff_max, c.cfg2_eff_max) for name, c in p.cases.items()}
    assert caps == {"single_simple": (9.6, 8.6), "single_complex": (9.2, 8.4), "multi_object": (9.2, 8.2)}
    h = p.hard_rules
    assert (h["ip_gap"], h["ip2_abs_max"], h["denoise2_max"]) == (0.10, 0.55, 0.60)
    assert (h["ip2_cap1_above"], h["ip2_cap1_cfg2"], h["ip2_cap2_above"], h["ip2_cap2_cfg2"]) == (0.4, 7.8, 0.5, 7.4)
    assert (h["union_couple_above"], h["pose_couple_above"], h["couple_cfg1_drop"]) == (0.75, 0.90, 0.4)
    assert (h["h_damp_above"], h["h_damp_cfg1"], h["h_damp_cfg2"]) == (0.6, 0.3, 0.5)


def test_node_driver_map_matches_section_13():
    nodes = default_policy().nodes
    expected = {
        "5": ("KSampler", {"steps", "cfg", "denoise"}), "55": ("KSampler", {"steps", "cfg", "denoise"}),
        "103": ("ControlNetApplyAdvanced", {"strength", "end_percent"}),
        "104": ("ControlNetApplyAdvanced", {"strength", "end_percent"}),
        "66": ("IPAdapterAdvanced", {"weight", "end_at"}), "105": ("IPAdapterAdvanced", {"weight", "end_at"}),
        "2": ("CLIPTextEncode", {"text"}), "3": ("CLIPTextEncode", {"text"}),
        "77": ("CLIPTextEncode", {"text"}), "76": ("CLIPTextEncode", {"text"}),
    }
    assert {k: (v.class_type, set(v.drives)) for k, v in nodes.items()} == expected
    assert nodes["2"].drives["text"] == "ks1_positive" and nodes["76"].drives["text"] == "ks2_negative"
    assert nodes["55"].drives["cfg"] == "cfg2" and nodes["105"].drives["weight"] == "ip2_weight"


def test_line_quality_section_has_exactly_the_agreed_keys():
    lq = default_policy().line_quality
    with pytest.raises(TypeError):  # read-only like every other section of the cached policy
        lq["max_broken"] = 1.0  # type: ignore[index]
    assert set(lq) == {"max_broken", "max_dotted", "max_fringe", "max_jitter", "max_stray",
                       "retry_cfg2_step", "retry_ip2_step", "retry_denoise2_step"}
    assert all(0 <= lq[k] <= 1 for k in lq if k.startswith("max_"))
    assert all(lq[k] > 0 for k in lq if k.startswith("retry_"))


def _broken(mutate) -> str:
    raw = copy.deepcopy(raw_default_policy())
    mutate(raw)
    with pytest.raises(PolicyError) as err:
        parse_policy(raw)
    return str(err.value)


def test_wrong_type_names_the_key_and_the_range():
    msg = _broken(lambda r: r["cases"]["single_simple"].__setitem__("cfg1_eff_max", "x"))
    assert msg == "policy key cases.single_simple.cfg1_eff_max: expected a number in [7, 10], got 'x'"


def test_missing_key_is_named():
    assert "policy key hard_rules.ip_gap: missing" in _broken(lambda r: r["hard_rules"].pop("ip_gap"))
    assert "policy key cases.multi_object.ip2_end_at: missing" in _broken(
        lambda r: r["cases"]["multi_object"].pop("ip2_end_at"))
    assert "policy key line_quality.max_jitter: missing" in _broken(lambda r: r["line_quality"].pop("max_jitter"))


def test_inverted_bounds_are_named():
    msg = _broken(lambda r: r["cases"]["single_complex"].__setitem__("denoise2", [0.5, 0.3]))
    assert "cases.single_complex.denoise2" in msg and "lower bound 0.5 is above upper bound 0.3" in msg


def test_out_of_range_and_non_integer_steps_are_named():
    assert "cfg.global_min" in _broken(lambda r: r["cfg"].__setitem__("global_min", float("nan")))
    simple = "single_simple"
    assert f"cases.{simple}.steps1" in _broken(lambda r: r["cases"][simple].__setitem__("steps1", [20.5, 26]))
    assert f"cases.{simple}.cfg2" in _broken(lambda r: r["cases"][simple].__setitem__("cfg2", [6.0, 8.0]))


def test_unknown_key_and_bad_references_are_named():
    assert "policy key modifiers.conflict_hihg: unknown key" in _broken(
        lambda r: r["modifiers"].__setitem__("conflict_hihg", 0.5))
    assert "raw_drivers.cfg1" in _broken(lambda r: r["raw_drivers"].__setitem__("cfg1", "Q"))
    assert "nodes.5.drives.cfg" in _broken(lambda r: r["nodes"]["5"]["drives"].__setitem__("cfg", "cfg9"))
    assert "prompts.style_modes" in _broken(lambda r: r["prompts"].__setitem__("style_modes", ["loud"]))


def test_policy_that_makes_a_hard_rule_impossible_is_refused():
    # ip2's lower bound must sit 0.10 under ip1's, or "ip2 <= ip1 - 0.10" could leave the bounds.
    msg = _broken(lambda r: r["cases"]["single_simple"].__setitem__("ip2_weight", [0.30, 0.50]))
    assert "cases.single_simple.ip2_weight" in msg and "ip2 <= ip1 - 0.10" in msg
    msg = _broken(lambda r: r["signals"].__setitem__("h_ip2", 0.5))
    assert "signals.h_cfg2" in msg and "sum to 1" in msg


def test_ks1_vocabulary_may_not_carry_ks2_only_language():
    msg = _broken(lambda r: r["prompts"]["ks1_structure"].append("Clean  Lines"))
    assert "prompts.ks1_structure" in msg and "clean lines" in msg


def test_load_policy_reports_unreadable_files(tmp_path):
    bad = tmp_path / "p.toml"
    bad.write_text("version = \n")
    with pytest.raises(PolicyError, match="not valid TOML"):
        load_policy(bad)
    with pytest.raises(PolicyError, match="not found"):
        load_policy(tmp_path / "missing.toml")


def test_template_contract_names_every_role_and_refuses_collisions():
    contract = default_policy().template_contract
    assert set(contract.images) == {"sketch", "reference"} and set(contract.saves) == {"stage1", "final"}
    assert set(contract.adaptive) <= set(default_policy().nodes)
    driven = next(iter(default_policy().nodes))
    msg = _broken(lambda r: r["template"]["planning"].__setitem__("unpack", driven))
    assert "template.planning.unpack" in msg and "driven node" in msg
    msg = _broken(lambda r: r["template"]["images"].pop("reference"))
    assert msg == "policy key template.images.reference: missing"
    msg = _broken(lambda r: r["template"]["saves"].__setitem__("final", 9))
    assert "template.saves.final" in msg and "node id" in msg
    msg = _broken(lambda r: r["template"]["adaptive"].__setitem__("12", "300"))
    assert "template.adaptive.12" in msg and "not a driven node" in msg


def test_tunables_are_declared_with_ranges_and_never_a_hard_rule():
    pol = default_policy()
    assert pol.tunables["classify.complex_threshold"] == (0.30, 0.70)
    assert not any(k.startswith(("hard_rules.", "limits.", "nodes.", "template.")) for k in pol.tunables)
    msg = _broken(lambda r: r["tunable"].__setitem__("hard_rules.ip2_abs_max", [0.4, 0.6]))
    assert "tunable.hard_rules.ip2_abs_max" in msg and "hard rule" in msg
    msg = _broken(lambda r: r["tunable"].__setitem__("cfg.global_max", [9.0, 11.0]))
    assert "tunable.cfg.global_max" in msg and "hard rule" in msg
    # A range that would let a case bound cross denoise2 <= 0.60 or ip2 <= 0.55 is refused.
    msg = _broken(lambda r: r["tunable"].__setitem__("cases.single_simple.denoise2", [0.2, 0.7]))
    assert "tunable.cases.single_simple.denoise2" in msg and "0.6" in msg
    msg = _broken(lambda r: r["tunable"].__setitem__("cases.multi_object.ip2_weight", [0.1, 0.6]))
    assert "0.55" in msg
    msg = _broken(lambda r: r["tunable"].__setitem__("classify.complex_threshold", [0.6, 0.7]))
    assert "current value" in msg
    msg = _broken(lambda r: r["tunable"].__setitem__("classify.no_such_key", [0.1, 0.2]))
    assert "no such policy key" in msg


def test_a_case_cfg_floor_above_the_global_minimum_is_refused():
    """The ip2-coupled caps lower cfg2 to 7.4 and the dampening lowers both: a case floor of 7.5 would let
    a rule-made value leave the case bounds (calibration's property test found such an overlay)."""
    msg = _broken(lambda r: r["cases"]["single_complex"].__setitem__("cfg2", [7.5, 8.4]))
    assert "cases.single_complex.cfg2" in msg and "global CFG minimum 7" in msg
