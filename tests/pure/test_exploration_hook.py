"""The runner's hooks calibration uses, without a server: --explore's adjusted plan and the overlay note reach the
logged plan (the run then stops at uploading to a closed port, keeping the plan in the log)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from agents.calibration.explore import explored_plan
from agents.planning.animation_director import plan_violations
from agents.planning.plan_types import Plan
from agents.policy import default_policy
from agents.runtime.comfyui_client import ComfyClient, ServerUnavailable
from agents.runtime.run_log import RunLog
from agents.runtime.runner import run_pair
from cli.local_comfy import free_port


def test_explored_plan_and_overlay_note_are_logged(fixture_data: Path, tmp_path: Path) -> None:
    pol = default_policy()
    rng = np.random.default_rng(3)
    note = {"applied": False, "path": None, "note": "test"}
    with RunLog(tmp_path / "runs.db") as log, ComfyClient(f"http://127.0.0.1:{free_port()}", timeout=2) as client:
        with pytest.raises(ServerUnavailable):
            run_pair(client, sketch=fixture_data / "sketches" / "user_1.png",
                     reference=fixture_data / "references" / "madoka.jpg", out_dir=tmp_path / "out", log=log,
                     policy_note=note, adjust_plan=lambda p: explored_plan(p, pol, rng, 0.5))
        [row] = log.runs()
    logged = Plan.from_dict(row["plan"])
    ex = row["plan"]["diagnostics"]["exploration"]
    assert row["plan"]["diagnostics"]["policy_overlay"] == note
    assert ex["share"] == 0.5 and np.isfinite(ex["log_density"])
    assert any(abs(logged.values()[k] - ex["planned"][k]) > 1e-9 for k in ("cfg1", "denoise2", "ip1_weight"))
    assert plan_violations(logged, pol) == []
    assert logged.prompts["ks1_positive"] and row["prompts"]["ks2_negative"]
