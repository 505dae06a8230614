"""Visual Analyst grading on labelled REAL drawings: a confusion table (label rough/clean by grade) and,
for drawings labelled as a rough/clean pair of the same picture, whether the clean one scores higher.

Labels live in TOML files of `[[drawing]]` tables (file, label, optional pair, source, author, licence,
changes): bench/real_drawings.toml lists the bundled fixtures (read from tests/fixtures/) and the
candidate drawings not in the repository, which are graded only when `--real-dir DIR` names a folder
holding them (e.g. a copy from the project's shared test data). Nothing here is tuned on these drawings.
"""

from __future__ import annotations

import collections
import tomllib
from dataclasses import dataclass
from pathlib import Path

from agents.measure.imaging import load_image
from agents.measure.visual_analyst import analyse

LABELS = Path(__file__).with_name("real_drawings.toml")
GRADES = ("clean", "structured", "messy", "empty")


@dataclass(frozen=True)
class Graded:
    file: str
    label: str
    pair: str
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


def grade(rows: list[dict[str, object]], bundled_root: Path, extra_root: Path | None) -> list[Graded]:
    """Grade each listed drawing found: bundled ones under bundled_root, the rest under extra_root."""
    out = []
    for row in rows:
        root = bundled_root if row.get("bundled", False) else extra_root
        if root is None or not (root / str(row["file"])).is_file():
            continue
        a = analyse(load_image(root / str(row["file"])), str(row["file"]))
        out.append(Graded(str(row["file"]), str(row["label"]), str(row.get("pair", "")),
                          a.line_quality, a.line_quality_score))
    return out


def report(graded: list[Graded], missing: int) -> None:
    counts = collections.Counter((g.label, g.grade) for g in graded)
    right = sum(1 for g in graded if (g.grade == "clean") == (g.label == "clean"))
    n = len(graded)
    share = f"{right / n:.1%}" if n else "n/a"
    print(f"\nREAL drawings (never tuned on): {n} graded ({missing} listed but not present), "
          f"clean-vs-not accuracy {share}")
    print(f"{'label / grade':14s}" + "".join(f"{g:>12s}" for g in GRADES))
    for label in ("clean", "rough"):
        print(f"{label:14s}" + "".join(f"{counts[(label, g)]:12d}" for g in GRADES))
    for g in graded:
        print(f"  {g.file:44s} {g.label:6s} {g.grade:10s} {g.score:.3f}")
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


def run(fixtures: Path, real_dir: Path | None) -> None:
    rows = entries()
    if real_dir is not None and (real_dir / "labels.toml").is_file():
        rows = rows + [dict(r, bundled=False) for r in entries(real_dir / "labels.toml")]
    graded = grade(rows, fixtures, real_dir)
    report(graded, len(rows) - len(graded))
