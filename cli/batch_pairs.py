"""The pairs of a `./m4 batch`: a folder of sketches with one reference, or a "sketch,reference" list
file; every image's header checked before the first pair runs, blank sketches set aside."""

from __future__ import annotations

from pathlib import Path

from cli.inputs import BLANK_HINT

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}
Pair = tuple[Path, Path]


class PairListError(ValueError):
    """The pair folder or list cannot be used; the message names the file and line."""


def _existing(text: str, base: Path, where: str) -> Path:
    path = Path(text.strip()).expanduser()
    path = path if path.is_absolute() else base / path
    if not path.is_file():
        raise PairListError(f"{where}: file not found: {path}")
    return path.resolve()


def read_pairs(source: Path, *, reference: Path | None = None) -> list[Pair]:
    """(sketch, reference) pairs from a folder of sketches (+ reference) or a "sketch,reference" list file."""
    source = Path(source)
    if source.is_dir():
        if reference is None:
            raise PairListError(f"{source} is a folder of sketches: give the style image with --reference")
        ref = _existing(str(reference), Path.cwd(), "--reference")
        sketches = sorted(p for p in source.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not sketches:
            raise PairListError(f"{source}: no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in the folder")
        return [(s.resolve(), ref) for s in sketches]
    if not source.is_file():
        raise PairListError(f"{source}: no such folder or pair list")
    pairs: list[Pair] = []
    for number, raw in enumerate(source.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = [p.strip() for p in line.split(",")]
        if number == 1 and [p.lower() for p in parts] == ["sketch", "reference"]:
            continue
        where = f"{source.name} line {number}"
        if len(parts) != 2 or not all(parts):
            raise PairListError(f"{where}: expected 'sketch,reference', got {line!r}")
        pairs.append((_existing(parts[0], source.parent, where), _existing(parts[1], source.parent, where)))
    if not pairs:
        raise PairListError(f"{source}: no pairs in the list")
    return pairs


def check_pair_images(pairs: list[Pair]) -> None:
    """Every sketch and reference of the batch passes the header check before any pair runs (InputError)."""
    from cli.inputs import check_image

    for path in sorted({p for pair in pairs for p in pair}):
        check_image(path, "sketch" if any(path == s for s, _r in pairs) else "reference")


def drop_blank(pairs: list[Pair]) -> list[Pair]:
    """The pairs whose sketch has strokes; each blank one is named on the terminal and not run."""
    from cli.inputs import blank_sketch

    kept = []
    blank: dict[Path, str | None] = {}
    for pair in pairs:
        if pair[0] not in blank:
            blank[pair[0]] = blank_sketch(pair[0])
        if blank[pair[0]]:
            print(f"[m4 batch] {pair[0].name}: skipped: {blank[pair[0]]}: {BLANK_HINT}", flush=True)
        else:
            kept.append(pair)
    return kept
