"""guidance.toml: every option declared once, validated with errors naming the key; the adaptive template,
the generated UI workflows, the object_info snapshot and the web extension agree with it."""

from __future__ import annotations

import copy
import json
import re
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from agents.guidance import GuidanceSettings
from agents.guidance.data import (
    DATA_PATH,
    EVENT,
    OPTION_NAMES,
    GuidanceInputError,
    guidance_data,
    parse_guidance_data,
    parse_options,
)
from agents.guidance.schedule_plot import plot_schedule_rgb

REPO = Path(__file__).resolve().parents[2]
ADAPTIVE_NODES = ("M4AdaptiveCFG", "M4AdaptiveGuider", "M4AdaptiveKSampler")


def _raw() -> dict[str, Any]:
    return tomllib.loads(DATA_PATH.read_text(encoding="utf-8"))


@pytest.mark.parametrize(("edit", "key"), [
    (lambda r: r["options"]["cfg_min"].update(default=-1.0), "options.cfg_min.default"),
    (lambda r: r["options"]["schedule"].update(default="zigzag"), "options.schedule.default"),
    (lambda r: r["options"]["early_stop"].update(default="yes"), "options.early_stop.default"),
    (lambda r: r["options"]["cfg_max"].update(range=[5.0, 1.0]), "options.cfg_max.range"),
    (lambda r: r["options"]["skip_below"].pop("step"), "options.skip_below"),
    (lambda r: r["options"].pop("early_stop_rule"), "options.early_stop_rule"),
    (lambda r: r["options"].update(wobble={"default": 1}), "options.wobble"),
    (lambda r: r["tunables"]["early_stop_patience"].update(value=0), "tunables.early_stop_patience.value"),
    (lambda r: r["tunables"]["early_stop_patience"].update(value=2.5), "tunables.early_stop_patience.value"),
    (lambda r: r["tunables"]["gap_close_calls"].update(value=0), "tunables.gap_close_calls.value"),
    (lambda r: r["tunables"]["gap_close_calls"].update(value=1.5), "tunables.gap_close_calls.value"),
    (lambda r: r["tunables"]["quality_agree_lo"].update(value=0.995), "tunables.quality_agree_lo"),
    (lambda r: r["template_preset"].update(cap_at_base=3), "template_preset.cap_at_base"),
    (lambda r: r.update(extra={}), "extra"),
    (lambda r: r["presets"]["gap_residual"].update(gap_cutoff=-1.0), "presets.gap_residual.gap_cutoff"),
    (lambda r: r["presets"]["gap_residual"].update(preset="none"), "presets.gap_residual.preset"),
    (lambda r: r["presets"].update(other={}), "presets.other"),
])
def test_a_bad_data_file_names_the_key(edit, key: str) -> None:
    raw = copy.deepcopy(_raw())
    edit(raw)
    with pytest.raises(GuidanceInputError, match=re.escape(f"guidance key {key}")):
        parse_guidance_data(raw)


def test_the_shipped_data_loads_and_sets_the_settings_defaults() -> None:
    d = guidance_data()
    assert tuple(d.options) == OPTION_NAMES
    s = GuidanceSettings()
    for name in ("schedule", "cfg_min", "cfg_max", "skip_below", "quality_adjust", "agreement_cutoff",
                 "interval_sigma_lo", "interval_sigma_hi"):
        assert getattr(s, name) == d.options[name].default, name
    node = GuidanceSettings.from_options(parse_options({}))
    assert (node.early_exit is not None) == d.options["early_stop"].default
    assert node.early_exit is not None and node.early_exit.tolerance == d.options["early_stop_tolerance"].default


@pytest.mark.parametrize(("values", "name"), [
    ({"cfg_min": 101.0}, "cfg_min"), ({"early_stop_tolerance": 0.0}, "early_stop_tolerance"),
    ({"early_stop_rule": "often"}, "early_stop_rule"), ({"schedule": 3}, "schedule"),
    ({"quality_adjust": 1}, "quality_adjust"), ({"cfg_max": float("nan")}, "cfg_max"),
    ({"sampler": "euler"}, "sampler"), ({"prompt": None}, "prompt"),
])
def test_bad_option_values_name_the_option(values: dict[str, Any], name: str) -> None:
    with pytest.raises(GuidanceInputError, match=f"^{name}: "):
        parse_options(values)


def test_missing_options_take_their_defaults_so_old_workflows_keep_their_behaviour() -> None:
    assert parse_options({}) == guidance_data().defaults()
    assert parse_options({"schedule": "constant"})["early_stop_rule"] == "denoised change"


def test_a_preset_overrides_the_options_it_names_and_nothing_else() -> None:
    d = guidance_data()
    plain = parse_options({"cfg_max": 9.0})
    preset = parse_options({"cfg_max": 9.0, "preset": "gap_residual", "early_stop_rule": "denoised change"})
    named = d.presets["gap_residual"]
    assert named and all(preset[k] == v for k, v in named.items())
    assert all(preset[k] == plain[k] for k in OPTION_NAMES if k not in named and k != "preset")
    assert preset["cfg_max"] == 9.0 and plain["preset"] == "none" and plain["early_stop_rule"] == "denoised change"


def test_the_adaptive_template_agrees_with_the_defaults_and_its_preset() -> None:
    api = json.loads((REPO / "workflows" / "api" / "Animation_Workflow_M4_Adaptive_Api.json").read_text())
    d = guidance_data()
    expected = {**d.defaults(), **d.template_preset}
    patches = {k: n for k, n in api.items() if n.get("class_type") == "M4AdaptiveCFG"}
    assert set(patches) == {"110", "111"}
    for nid, node in patches.items():
        given = {k: v for k, v in node["inputs"].items() if k in OPTION_NAMES}
        assert set(node["inputs"]) - set(given) == {"model"}
        for k, v in given.items():
            assert v == expected[k], f"template node {nid} {k}={v!r}, the data says {expected[k]!r}"
        missing = set(OPTION_NAMES) - set(given)
        assert all(d.options[k].optional for k in missing), missing


def _snapshot() -> dict[str, Any]:
    return json.loads((REPO / "scripts" / "object_info_snapshot.json").read_text())


def test_the_snapshot_and_the_generated_ui_workflows_agree_with_the_defaults() -> None:
    snap = _snapshot()
    d = guidance_data()
    for cls in ADAPTIVE_NODES:
        names = [i["name"] for i in snap[cls]["inputs"]]
        assert [n for n in names if n in OPTION_NAMES] == list(OPTION_NAMES), cls  # same options, same order
        for i in snap[cls]["inputs"]:
            if i["name"] in OPTION_NAMES:
                assert i["default"] == d.options[i["name"]].default, (cls, i["name"])
                assert i["optional"] == d.options[i["name"]].optional, (cls, i["name"])
    checked = 0
    for path in sorted((REPO / "workflows").glob("*.json")):
        for node in json.loads(path.read_text())["nodes"]:
            if node["type"] not in ADAPTIVE_NODES:
                continue
            widgets = [i for i in snap[node["type"]]["inputs"] if i["type"] in {"INT", "FLOAT", "STRING", "BOOLEAN",
                                                                                 "COMBO"}]
            values, k = {}, 0
            for w in widgets:
                values[w["name"]] = node["widgets_values"][k]
                k += 2 if w.get("control_after_generate") else 1
            assert k == len(node["widgets_values"]), (path.name, node["id"])
            expected = {**d.defaults(), **(d.template_preset if node["id"] in (110, 111) else {})}
            for name in OPTION_NAMES:
                assert values[name] == expected[name], (path.name, node["id"], name)
            checked += 1
    assert checked >= 4


def test_the_web_extension_listens_to_the_event_the_nodes_send() -> None:
    js = (REPO / "web" / "m4_director.js").read_text(encoding="utf-8")
    listened = re.findall(r'api\.addEventListener\("([^"]+)"', js)
    assert EVENT in listened
    assert not [e for e in listened if e.startswith("m4.") and e != EVENT]


def _summary(skipped: bool) -> dict[str, Any]:
    calls = [{"index": i, "cfg": 1.0 if i < 3 else 2.0 + i, "uncond": i >= 3, "skipped": skipped and i > 7}
             for i in range(10)]
    return {"schedule": "linear_up", "calls": calls, "model_calls": 8, "uncond_calls": 5, "steps_used": 8, "steps": 10}


def test_the_schedule_plot_draws_without_matplotlib(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # any import of it now fails
    img = plot_schedule_rgb(_summary(True), 640, 320)
    assert img.shape == (320, 640, 3) and img.dtype.name == "uint8"
    blue = ((img[..., 2] > 150) & (img[..., 0] < 90)).sum()
    orange = ((img[..., 0] > 200) & (img[..., 1] > 90) & (img[..., 1] < 150) & (img[..., 2] < 40)).sum()
    grey = ((img[..., 0] == 153) & (img[..., 1] == 153) & (img[..., 2] == 153)).sum()
    assert blue > 200 and orange > 20 and grey > 20
    empty = plot_schedule_rgb({"calls": []})
    assert empty.shape == (320, 640, 3)
    with pytest.raises(ValueError, match="plot size"):
        plot_schedule_rgb(_summary(False), 10, 10)


def test_the_curve_follows_the_cfg() -> None:
    """Higher CFG is drawn higher: the blue curve's mean row falls (image y grows downwards) left to right."""
    img = plot_schedule_rgb(_summary(False), 640, 320)
    blue = (img[..., 2] > 150) & (img[..., 0] < 90) & (img[..., 1] < 140)
    cols = [c for c in range(60, 620) if blue[40:284, c].any()]
    rows = [float(blue[40:284, c].nonzero()[0].mean()) for c in cols]
    assert rows[-1] < rows[len(rows) // 2] < rows[0] + 1
