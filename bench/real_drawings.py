"""Visual Analyst grading on labelled REAL drawings: a confusion table (label rough/clean by grade) and,
for drawings labelled as a rough/clean pair of the same picture, whether the clean one scores higher.

Labels live in TOML files of `[[drawing]]` tables (file, label, optional pair and half, source, author,
licence, changes):
- tests/fixtures/real_drawings/labels.toml: the bundled public-domain clean line drawings, split by a
  written rule into a TUNING and a CHECKING half;
- bench/real_drawings.toml: the older bundled fixtures (tests/fixtures/), the real rough sketches and their
  clean outlines (tests/fixtures/real_drawings/), and any candidate not bundled, graded from `--real-dir DIR`.
Only the tuning half may be used to choose measure.toml values.
"""

from __future__ import annotations

import collections
import tomllib
from dataclasses import dataclass
from pathlib import Path

from agents.measure.imaging import load_image
from agents.measure.visual_analyst import analyse

LABELS = Path(__file__).with_name("real_drawings.toml")
FIXTURE_LABELS = "real_drawings/labels.toml"  # under tests/fixtures/
GRADES = ("clean", "structured", "messy", "empty")


@dataclass(frozen=True)
class Graded:
    file: str
    label: str
    pair: str
    half: str
    grade: str
    score: float


def entries(path: Path = LABELS) -> list[dict[str, object]]:
    """The `[[drawing]]` tables of a labels file; each needs a file and a label of rough or clean."""
    data = tomllib.loads(path.read_text())
    rows = data.get("drawing", [])
    for i, row in enumerate(rows):
        if not isinstance(row.get("file"), str) or row.get("label") not in ("rough", "clean"):
            raise ValueError(f"{path.name}: drawing {i}: needs file and label 'rough' or 'clean'")
    return rows


def located(fixtures: Path, real_dir: Path | None) -> tuple[list[tuple[dict[str, object], Path]], int]:
    """Every listed drawing that is present, with its path (bundled ones under tests/fixtures/, the
    fixture labels' ones under tests/fixtures/real_drawings/, candidates there or under real_dir), and
    how many listed drawings are absent."""
    extra = fixtures / "real_drawings"
    found, missing = [], 0
    for row in entries(LABELS):
        roots = [fixtures] if row.get("bundled", False) else [extra] + ([real_dir] if real_dir else [])
        path = next((r / str(row["file"]) for r in roots if (r / str(row["file"])).is_file()), None)
        if path is None:
            missing += 1
        else:
            found.append((row, path))
    if (fixtures / FIXTURE_LABELS).is_file():
        found += [(row, extra / str(row["file"])) for row in entries(fixtures / FIXTURE_LABELS)]
    return found, missing


def grade(found: list[tuple[dict[str, object], Path]]) -> list[Graded]:
    out = []
    for row, path in found:
        a = analyse(load_image(path), str(row["file"]))
        out.append(Graded(str(row["file"]), str(row["label"]), str(row.get("pair", "")),
                          str(row.get("half", "checking")), a.line_quality, a.line_quality_score))
    return out


def table(name: str, graded: list[Graded]) -> None:
    counts = collections.Counter((g.label, g.grade) for g in graded)
    right = sum(1 for g in graded if (g.grade == "clean") == (g.label == "clean"))
    n = len(graded)
    share = f"{right / n:.1%}" if n else "n/a"
    print(f"\n{name}: {n} drawings, clean-vs-not accuracy {share}")
    print(f"{'label / grade':14s}" + "".join(f"{g:>12s}" for g in GRADES))
    for label in ("clean", "rough"):
        print(f"{label:14s}" + "".join(f"{counts[(label, g)]:12d}" for g in GRADES))
    clean = [g.score for g in graded if g.label == "clean"]
    rough = [g.score for g in graded if g.label == "rough"]
    if clean and rough:  # AUC: share of (clean, rough) pairs, any drawings, where the clean one scores higher
        auc = sum((c > r) + 0.5 * (c == r) for c in clean for r in rough) / (len(clean) * len(rough))
        print(f"score ranking (clean above rough, all pairs of drawings): {auc:.1%}")


def report(graded: list[Graded], missing: int, verbose: bool) -> None:
    print(f"\nREAL drawings: {len(graded)} graded ({missing} listed candidates not present)")
    table("REAL, tuning half (may be chosen on)", [g for g in graded if g.half == "tuning"])
    table("REAL, checking half (never chosen on)", [g for g in graded if g.half == "checking"])
    table("REAL, earlier fixtures (looked at while designing)", [g for g in graded if g.half == "looked_at"])
    for g in graded if verbose else []:
        print(f"  {g.file:44s} {g.half:8s} {g.label:6s} {g.grade:10s} {g.score:.3f}")
    pairs: dict[str, dict[str, Graded]] = collections.defaultdict(dict)
    for g in graded:
        if g.pair:
            pairs[g.pair][g.label] = g
    full = {k: v for k, v in pairs.items() if {"rough", "clean"} <= v.keys()}
    ok = sum(1 for v in full.values() if v["clean"].score > v["rough"].score)
    print(f"pairs (clean scores above rough of the same drawing): {ok} of {len(full)}")
    for name, v in sorted(full.items()):
        mark = "ok" if v["clean"].score > v["rough"].score else "FAIL"
        print(f"  {name:24s} clean {v['clean'].score:.3f} vs rough {v['rough'].score:.3f}  {mark}")


def run(fixtures: Path, real_dir: Path | None, verbose: bool = False) -> list[Graded]:
    found, missing = located(fixtures, real_dir)
    graded = grade(found)
    report(graded, missing, verbose)
    return graded
