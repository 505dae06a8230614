"""Visual Analyst grading on labelled drawings: confusion tables on the synthetic TUNING and HELD-OUT
sets (tests/host/drawing_sets.py), and beside them the confusion on labelled REAL drawings
(bench/real_drawings.py: the bundled fixtures, plus the listed candidates found in --real-dir).

Run from the repository root:  $PY bench/analyst_confusion.py [--quick] [--real-dir DIR]
The tuning set is what measure.toml's [rough_scores] ramps and rough-signal weights were chosen on;
the held-out set (other seeds, 512 and 768 px) was never looked at while choosing them.
"""

from __future__ import annotations

import argparse
import collections
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from agents.measure.imaging import load_image  # noqa: E402
from agents.measure.rough_scores import ROUGH_SIGNALS  # noqa: E402
from agents.measure.visual_analyst import analyse  # noqa: E402
from bench import real_drawings  # noqa: E402
from host.drawing_sets import HELD_OUT_SEEDS, TUNING_SEEDS, labelled  # noqa: E402

GRADES = ("clean", "structured", "messy")
REAL = {  # bundled real drawings and the grade each must (not) get: tests/pure/test_visual_analyst_rough.py
    "sketches/user_1.png": "clean", "sketches/user_3.png": "clean", "sketches/house_line.png": "messy",
    "sketches/bag_scribble.png": "not clean", "references/madoka_lineart.png": "clean or structured",
    "sketches/human_line.png": "(unlabelled)",
}


def table(name: str, seeds: range, sizes: tuple[int, ...]) -> None:
    counts: dict[tuple[str, str], int] = collections.Counter()
    by_kind: dict[str, list[bool]] = collections.defaultdict(list)
    for _, kind, label, image in labelled(seeds, sizes):
        grade = analyse(image).line_quality
        counts[(label, grade)] += 1
        by_kind[kind].append((grade == "clean") == (label == "clean"))
    total = sum(counts.values())
    right = sum(v for (label, grade), v in counts.items() if (grade == "clean") == (label == "clean"))
    print(f"\n{name}: {total} drawings, clean-vs-not accuracy {right / total:.1%}")
    print(f"{'label / grade':14s}" + "".join(f"{g:>12s}" for g in GRADES))
    for label in ("clean", "rough"):
        print(f"{label:14s}" + "".join(f"{counts[(label, g)]:12d}" for g in GRADES))
    print("per kind (share graded right): " + ", ".join(f"{k} {sum(v) / len(v):.0%}" for k, v in by_kind.items()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="8 seeds per set instead of 24")
    ap.add_argument("--real-dir", type=Path, default=None,
                    help="folder holding the candidate real drawings listed in bench/real_drawings.toml "
                         "(also looked for in tests/fixtures/real_drawings/)")
    ap.add_argument("--verbose", action="store_true", help="print each real drawing's grade")
    args = ap.parse_args()
    n = 8 if args.quick else len(TUNING_SEEDS)
    table("TUNING set (chosen on)", TUNING_SEEDS[:n], (512,))
    table("HELD-OUT set (never tuned on)", HELD_OUT_SEEDS[:n], (512, 768))
    print("\nbundled real drawings:")
    for rel, want in REAL.items():
        a = analyse(load_image(REPO / "tests" / "fixtures" / rel), rel)
        rough = {k: round(getattr(a, k), 2) for k in ROUGH_SIGNALS}
        print(f"  {rel:32s} {a.line_quality:10s} {a.line_quality_score:.3f}  want {want:20s} {rough}")
    real_drawings.run(REPO / "tests" / "fixtures", args.real_dir, args.verbose)


if __name__ == "__main__":
    main()
