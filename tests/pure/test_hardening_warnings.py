"""Issue 11 item 8: values the planner cannot trust keep their safe substitution but are said (a warning
naming the field and the value used, in the plan's diagnostics, on the terminal and in the report), and
a blank, uniform or noise-only sketch is said too and costs no generation in run/batch unless asked."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from agents.planning.animation_director import plan
from agents.policy import default_policy
from host.hostile_peer import Script, hostile_server
from host.records import make_analysis, make_reference

REPO = Path(__file__).resolve().parents[2]
REFERENCE = REPO / "tests" / "fixtures" / "references" / "saber.png"
SKETCH = REPO / "tests" / "fixtures" / "sketches" / "house_line.png"


@pytest.mark.parametrize(("where", "field", "value"), [
    ("analysis", "line_quality_score", math.nan), ("analysis", "subject_scale", math.inf),
    ("reference", "similarity", math.nan), ("reference", "conflict_penalty", -math.inf),
    ("analysis", "broken_lines", 3.5),
])
def test_an_untrusted_value_is_replaced_and_warned_about_by_name(where: str, field: str, value: float) -> None:
    analysis = make_analysis(**({field: value} if where == "analysis" else {}))
    reference = make_reference(**({field: value} if where == "reference" else {}))
    p = plan(analysis, reference)
    warnings = p.diagnostics["warnings"]
    [line] = [w for w in warnings if w.startswith(f"{where}.{field} was ")]
    used = default_policy().sanitise[field] if not math.isfinite(value) else 1.0
    assert f"was {value:.6g}: used {used:.6g}" in line
    assert p.to_json()  # still a finite, serialisable plan


def test_intent_strength_nan_is_warned_about() -> None:
    p = plan(make_analysis(), make_reference(), intent_strength=math.nan)
    assert any(w.startswith("intent_strength was nan: used") for w in p.diagnostics["warnings"])


def test_clean_inputs_have_no_warnings() -> None:
    assert plan(make_analysis(), make_reference()).diagnostics["warnings"] == []


def _blank(tmp_path: Path, kind: str) -> Path:
    rng = np.random.default_rng(1)
    img = {"white": np.full((256, 256, 3), 255, np.uint8),
           "noise": (rng.random((256, 256, 3)) * 255).astype(np.uint8)}[kind]
    path = tmp_path / f"{kind}.png"
    cv2.imwrite(str(path), img)
    return path


def _m4(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cli", *argv], cwd=REPO, capture_output=True, text=True,
                          env=dict(os.environ), timeout=180, check=False)


@pytest.mark.parametrize("kind", ["white", "noise"])
def test_plan_says_a_blank_sketch_on_the_terminal_and_in_the_report(tmp_path: Path, kind: str) -> None:
    sketch = _blank(tmp_path, kind)
    done = _m4("plan", "--sketch", str(sketch), "--no-reference", "--out", str(tmp_path / "o"))
    assert done.returncode == 0, done.stderr
    assert f"{kind}.png: warning: the sketch is empty (no strokes found" in done.stdout
    page = (tmp_path / "o" / kind / "report.html").read_text()
    assert "warning: the sketch is empty" in page


def test_run_spends_no_generation_on_a_blank_sketch(tmp_path: Path) -> None:
    script = Script()
    with hostile_server(script) as url:
        done = _m4("run", "--server", url, "--sketch", str(_blank(tmp_path, "white")), "--reference", str(REFERENCE),
                   "--log", str(tmp_path / "log.sqlite3"))
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == ("error: --sketch white.png: no strokes found (blank, uniform or noise only): "
                                   "nothing was generated from it; --allow-blank runs it anyway")
    assert script.seen == []  # the server was not even asked


def test_run_with_allow_blank_goes_ahead(tmp_path: Path) -> None:
    script = Script()
    with hostile_server(script) as url:
        done = _m4("run", "--server", url, "--allow-blank", "--sketch", str(_blank(tmp_path, "white")),
                   "--reference", str(REFERENCE), "--log", str(tmp_path / "log.sqlite3"))
    assert done.returncode == 2 and "/object_info" in done.stderr  # it went on to ask the (useless) server
    assert ("GET", "/object_info") in script.seen


def test_batch_skips_blank_sketches_and_names_them(tmp_path: Path) -> None:
    from cli.batch import drop_blank

    folder = tmp_path / "sketches"
    folder.mkdir()
    blank = _blank(folder, "white")
    kept = drop_blank([(blank, REFERENCE), (SKETCH, REFERENCE)])
    assert kept == [(SKETCH, REFERENCE)]
    script = Script()
    with hostile_server(script) as url:
        done = _m4("batch", str(folder), "--reference", str(REFERENCE), "--server", url,
                   "--log", str(tmp_path / "log.sqlite3"))
    assert done.returncode == 2 and done.stderr.strip() == ("error: every sketch is blank: nothing was generated "
                                                            "from it; --allow-blank runs it anyway")
    assert "white.png: skipped: no strokes found" in done.stdout
    assert script.seen == []
