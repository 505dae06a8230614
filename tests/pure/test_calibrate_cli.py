"""`./m4 calibrate` end to end on a real run log (runs with real fixture images, rated in part), then `./m4 plan`
showing the overlay in its diagnostics, --no-overlay ignoring it, --dry-run writing nothing, too few runs refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from agents.calibration.explore import explored_plan
from agents.planning.animation_director import plan
from agents.policy import default_policy
from agents.runtime.run_log import RunLog
from cli.calibrate_cmd import main as calibrate_main
from cli.plan_cmd import main as plan_main
from host.records import make_analysis, make_reference


def _fill(log_path: Path, sketch: Path, n: int, seed: int) -> list[int]:
    pol = default_policy()
    rng = np.random.default_rng(seed)
    ids = []
    with RunLog(log_path) as log:
        for _ in range(n):
            a = make_analysis(line_quality_score=float(rng.random()), complexity_score=float(rng.random()),
                              subject_scale=float(rng.random()), construction_lines=float(rng.random() * 0.4))
            r = make_reference(similarity=float(rng.random()), conflict_penalty=float(rng.random() * 0.6))
            p = explored_plan(plan(a, r, pol), pol, rng, 0.3)
            values = {k: float(v) for k, v in p.values().items()}
            z = 0.3 - 2.5 * (values["cfg2"] - 7.0) * values["ip2_weight"] - 1.2 * (values["cfg1"] - 8.0) ** 2
            passed = bool(rng.random() < 1 / (1 + np.exp(-z)))
            rid = log.start_run(sketch=sketch, reference=None, server="test")
            log.record(rid, plan=p.to_dict(), diagnostics=p.diagnostics,
                       metrics={"analysis": a.to_dict(), "reference": r.to_dict()},
                       verdict={"passed": passed}, accepted=passed)
            log.finish(rid, status="done")
            ids.append(rid)
    return ids


@pytest.fixture()
def sketch(fixture_data: Path) -> Path:
    return sorted((fixture_data / "sketches").glob("*.png"))[0]


def test_calibrate_writes_overlay_and_plan_uses_it(sketch: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "m4_runs.sqlite3"
    ids = _fill(log, sketch, 70, 4)
    with RunLog(log) as lg:
        for rid in ids[:10]:
            lg.rate(rid, "good" if rid % 2 else "bad")
    overlay = tmp_path / "m4_policy_overlay.toml"
    assert calibrate_main(["--log", str(log), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "dry run" in out and not overlay.exists()
    assert "10 rated, 60 by the automatic verdict" in out and "held-out" in out
    assert calibrate_main(["--log", str(log)]) == 0
    out = capsys.readouterr().out
    assert overlay.is_file() and (tmp_path / "calibration_report.html").is_file()
    text = overlay.read_text()
    assert 'policy_version = "m4-policy-1"' in text and "run_count = 70" in text and "model_log_loss" in text
    page = (tmp_path / "calibration_report.html").read_text()
    assert "data:image/png;base64" in page and "reliability" in page
    # ./m4 plan picks the overlay up from beside the log and says so in the diagnostics
    assert plan_main(["--sketch", str(sketch), "--no-reference", "--out", str(tmp_path / "p1"), "--log", str(log)]) == 0
    data = json.loads((tmp_path / "p1" / sketch.stem / "plan.json").read_text())
    note = data["plan"]["diagnostics"]["policy_overlay"]
    assert note["applied"] is True and note["path"] == str(overlay)
    assert plan_main(["--sketch", str(sketch), "--no-reference", "--out", str(tmp_path / "p2"), "--log", str(log),
                      "--no-overlay"]) == 0
    data = json.loads((tmp_path / "p2" / sketch.stem / "plan.json").read_text())
    assert data["plan"]["diagnostics"]["policy_overlay"]["applied"] is False
    # a hand-broken overlay: the plan still runs on the locked policy and says why
    overlay.write_text(text.replace('policy_version = "m4-policy-1"', 'policy_version = "m4-policy-0"'))
    assert plan_main(["--sketch", str(sketch), "--no-reference", "--out", str(tmp_path / "p3"), "--log", str(log)]) == 0
    assert "refused" in capsys.readouterr().out


def test_too_few_runs_and_missing_log(sketch: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "small.sqlite3"
    _fill(log, sketch, 12, 1)
    assert calibrate_main(["--log", str(log)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "needs at least 30 usable runs" in err[0] and "has 12 usable" in err[0]
    assert not (tmp_path / "m4_policy_overlay.toml").exists()
    assert calibrate_main(["--log", str(tmp_path / "none.sqlite3")]) == 2
    assert "no run log" in capsys.readouterr().err
    empty = tmp_path / "empty.sqlite3"
    RunLog(empty).close()
    assert calibrate_main(["--log", str(empty)]) == 2
    assert "has 0 usable" in capsys.readouterr().err


def test_calibrate_refuses_an_overlay_the_doubly_robust_check_rejects(sketch: Path, tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str],
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import agents.calibration.off_policy as off_policy

    log = tmp_path / "m4_runs.sqlite3"
    _fill(log, sketch, 60, 9)
    assert calibrate_main(["--log", str(log), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "off-policy estimates on 60 explored run(s)" in out and "DR gain of the calibrated policy" in out
    assert "current     " in out and "REFUSED" not in out
    monkeypatch.setattr(off_policy, "refusal", lambda cur, cal, s: "the DR lower bound is clearly below (test)")
    assert calibrate_main(["--log", str(log)]) == 1
    captured = capsys.readouterr()
    assert "REFUSED: the DR lower bound is clearly below (test)" in captured.out
    assert "overlay refused, nothing written" in captured.err
    assert not (tmp_path / "m4_policy_overlay.toml").exists() and not (tmp_path / "calibration_report.html").exists()
