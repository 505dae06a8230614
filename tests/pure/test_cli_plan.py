"""`./m4 plan` (agents only), the batch pair list and the run report, without a server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agents.planning.animation_director import plan_violations
from agents.planning.plan_types import Plan
from cli.batch import PairListError, read_pairs
from cli.plan_cmd import main as plan_main
from cli.report import attempts_html, schedule_series

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def test_plan_writes_plan_and_report_per_sketch(fixture_data: Path, tmp_path: Path) -> None:
    sketches = sorted((fixture_data / "sketches").glob("*.png"))[:2]
    reference = sorted((fixture_data / "references").glob("*.png"))[0]
    argv = ["--reference", str(reference), "--out", str(tmp_path), "--tags", "1girl, solo"]
    for s in sketches:
        argv += ["--sketch", str(s)]
    assert plan_main(argv) == 0
    for s in sketches:
        data = json.loads((tmp_path / s.stem / "plan.json").read_text())
        assert set(data) >= {"analysis", "reference", "plan", "prompts"}
        assert data["analysis"]["image_name"] == s.name
        assert data["reference"]["present"] is True
        # The written plan is a real, rule-abiding Director plan with the prompts in it.
        plan = Plan.from_dict(data["plan"])
        assert plan_violations(plan) == []
        assert "1girl" in plan.prompts["ks1_positive"]
        page = (tmp_path / s.stem / "report.html").read_text()
        assert "no ComfyUI server" in page and s.name in page and "$" not in page.split("<body>")[1][:400]
        assert (tmp_path / s.stem / "signals.png").stat().st_size > 1000


def test_plan_without_reference_has_zero_reliability(fixture_data: Path, tmp_path: Path) -> None:
    sketch = sorted((fixture_data / "sketches").glob("*.png"))[0]
    assert plan_main(["--sketch", str(sketch), "--no-reference", "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / sketch.stem / "plan.json").read_text())
    assert data["reference"]["present"] is False
    assert data["plan"]["signals"]["R"] == 0


def test_plan_refuses_bad_input_before_writing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    assert plan_main(["--sketch", str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "--sketch" in err and "bad.png" in err
    assert not (tmp_path / "o").exists()


def test_pair_list_resolves_relative_paths_and_names_bad_lines(tmp_path: Path) -> None:
    sketch = FIXTURES / "sketches" / "house_line.png"
    ref = FIXTURES / "references" / "saber.png"
    listing = tmp_path / "pairs.csv"
    listing.write_text(f"sketch,reference\n# a comment\n\n{sketch},{ref}\n{sketch}, {ref} \n")
    pairs = read_pairs(listing)
    assert pairs == [(sketch.resolve(), ref.resolve())] * 2
    # A pair's path is relative to the list's folder.
    (tmp_path / "s.png").write_bytes(sketch.read_bytes())
    listing.write_text(f"s.png,{ref}\n")
    assert read_pairs(listing) == [((tmp_path / "s.png").resolve(), ref.resolve())]
    listing.write_text(f"{sketch},{ref}\n{sketch}\n")
    with pytest.raises(PairListError, match=r"pairs.csv line 2"):
        read_pairs(listing)
    listing.write_text(f"{sketch},{tmp_path / 'missing.png'}\n")
    with pytest.raises(PairListError, match=r"line 1.*missing.png"):
        read_pairs(listing)


def test_pair_folder_pairs_every_image_with_the_reference(tmp_path: Path) -> None:
    for name in ("b.png", "a.jpg"):
        (tmp_path / name).write_bytes((FIXTURES / "sketches" / "house_line.png").read_bytes())
    (tmp_path / "notes.txt").write_text("not a sketch")
    ref = FIXTURES / "references" / "saber.png"
    pairs = read_pairs(tmp_path, reference=ref)
    assert [p[0].name for p in pairs] == ["a.jpg", "b.png"] and {p[1] for p in pairs} == {ref.resolve()}
    with pytest.raises(PairListError, match="--reference"):
        read_pairs(tmp_path)


def test_run_report_shows_both_attempts_and_the_schedule(tmp_path: Path) -> None:
    img = FIXTURES / "sketches" / "house_line.png"
    (tmp_path / "attempt-1").mkdir()
    (tmp_path / "attempt-1" / "final.png").write_bytes(img.read_bytes())
    events = [{"node": "90", "sigma": 10.0 - i, "cfg": 7.0 - i, "uncond": i < 2, "index": i} for i in range(4)]
    events.append({"node": "90", "final": True, "steps_used": 4})
    assert schedule_series(events) == {"90": [(0, 7.0, True), (1, 6.0, True), (2, 5.0, False), (3, 4.0, False)]}
    attempts = [
        {"label": "attempt 1", "plan": {"cfg2": 6.5}, "verdict": {"passed": False, "failures": ["broken"]},
         "images": {"final": tmp_path / "attempt-1" / "final.png"}, "schedule": events},
        {"label": "retry", "plan": {"cfg2": 6.0}, "verdict": {"passed": True, "failures": []}, "images": {}},
    ]
    page = attempts_html(tmp_path, attempts)
    assert 'src="attempt-1/final.png"' in page
    assert "attempt 1: Line Quality" in page and "retry: Line Quality" in page
    assert page.count('class="fail"') == 1 and page.count('class="pass"') == 1
    assert "schedule-1.png" in page and (tmp_path / "schedule-1.png").stat().st_size > 1000
    assert not (tmp_path / "schedule-2.png").exists()
