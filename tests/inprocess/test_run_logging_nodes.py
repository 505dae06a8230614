"""M4RunLogger -> M4RateRun through the real imported pack: a canvas run lands in the run log in ComfyUI's user
folder with its plan and verdict, is rated, and is read back by calibration's dataset loader."""

from __future__ import annotations

import importlib

import pytest
import torch

from host.inprocess import run_node as _run


def _tensor(path) -> torch.Tensor:
    from agents.measure.imaging import load_image, to_rgb_float

    return torch.from_numpy(to_rgb_float(load_image(path)))[None]




def test_canvas_run_logged_rated_and_readable(pack, fixture_data, tmp_path, monkeypatch) -> None:
    import folder_paths

    old = folder_paths.get_user_directory()
    folder_paths.set_user_directory(str(tmp_path))
    monkeypatch.delenv("M4_RUN_LOG_OFF", raising=False)
    try:
        mods = {n: importlib.import_module(f"m4_director.nodes.{n}")
                for n in ("run_logging", "visual_analyst", "reference_compare", "director")}
        sketch = _tensor(fixture_data / "sketches/human_line.png")
        analysis = _run(mods["visual_analyst"].M4VisualAnalyst, image=sketch).args[0]
        ref = _run(mods["reference_compare"].M4ReferenceCompare, sketch=sketch,
                   reference=_tensor(fixture_data / "references/madoka.jpg")).args[0]
        plan = _run(mods["director"].M4AnimationDirector, analysis=analysis, reference_report=ref).args[0]
        out = _run(mods["run_logging"].M4RunLogger, image=sketch, plan=plan, analysis=analysis,
                   reference_report=ref, sketch=sketch, enabled=True)
        run_id = out.args[0]
        assert run_id >= 1 and "logged" in out.args[1]
        off = _run(mods["run_logging"].M4RunLogger, image=sketch, plan=plan, analysis=analysis, enabled=False)
        assert off.args[0] == -1
        rated = _run(mods["run_logging"].M4RateRun, run_id=run_id, rating="bad", note="fringes")
        assert "rated bad" in rated.args[0]
        with pytest.raises(ValueError, match="no run 999"):
            _run(mods["run_logging"].M4RateRun, run_id=999, rating="good", note="")
        from agents.calibration.dataset import load_dataset
        from agents.runtime.run_log import RunLog

        with RunLog(tmp_path / "m4_director" / "m4_runs.sqlite3") as log:
            assert len(log.runs()) == 1
            row = log.get(run_id)
            assert row["server"] == "canvas" and row["plan"]["case"] == plan.case and row["accepted"] is not None
            ds = load_dataset(log)
        assert [r.run_id for r in ds.records] == [run_id] and ds.records[0].outcome_source == "rating"
    finally:
        folder_paths.set_user_directory(old)


def test_director_node_plans_with_the_user_folder_overlay(pack, fixture_data, tmp_path, monkeypatch) -> None:
    import folder_paths

    from agents.policy.overlay import MovedValue, dump_overlay

    old = folder_paths.get_user_directory()
    folder_paths.set_user_directory(str(tmp_path))
    monkeypatch.delenv("M4_POLICY_OVERLAY", raising=False)
    try:
        mods = {n: importlib.import_module(f"m4_director.nodes.{n}") for n in ("visual_analyst", "director")}
        sketch = _tensor(fixture_data / "sketches/human_line.png")
        analysis = _run(mods["visual_analyst"].M4VisualAnalyst, image=sketch).args[0]
        locked = _run(mods["director"].M4AnimationDirector, analysis=analysis).args[0]
        assert "policy_overlay" not in locked.diagnostics
        case = locked.case
        lo, hi = locked.bounds["cfg1"]
        director = mods["director"].M4AnimationDirector
        before = director.fingerprint_inputs(analysis=analysis)
        overlay = tmp_path / "m4_director" / "m4_policy_overlay.toml"
        overlay.parent.mkdir(parents=True)
        prov = {"policy_version": "m4-policy-1", "run_count": 50}
        overlay.write_text(dump_overlay(prov, [MovedValue(f"cases.{case}.cfg1", [7.0, 8.0], [7.0, 9.6], "test")]))
        # A new overlay changes the node's fingerprint: ComfyUI re-plans instead of serving its cached plan.
        assert director.fingerprint_inputs(analysis=analysis) != before
        calibrated = _run(mods["director"].M4AnimationDirector, analysis=analysis).args[0]
        assert calibrated.diagnostics["policy_overlay"]["applied"] is True
        assert calibrated.cfg1 <= 8.0 + 1e-9 and calibrated.bounds["cfg1"][1] <= 8.0 + 1e-9
        monkeypatch.setenv("M4_POLICY_OVERLAY", "off")
        ignored = _run(mods["director"].M4AnimationDirector, analysis=analysis).args[0]
        assert "policy_overlay" not in ignored.diagnostics and ignored.bounds["cfg1"] == [lo, hi]
    finally:
        folder_paths.set_user_directory(old)
