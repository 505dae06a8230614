"""The sketch/reference options the commands share, checked before any work starts."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"
DEFAULT_REFERENCE = FIXTURES / "references" / "madoka_lineart.png"


def error_line(exc: BaseException | str) -> str:
    """'error: <message>' on one line (a server's answer quoted in a message may hold line breaks)."""
    return "error: " + (" ".join(str(exc).split()) or type(exc).__name__)


class InputError(ValueError):
    """A sketch or reference given on the command line cannot be used; the message names the option."""


def read_image(path: Path, role: str) -> Any:
    from agents.measure.imaging import ImageInputError, load_image

    try:
        return load_image(path)
    except ImageInputError as exc:
        raise InputError(f"--{role}: {exc}") from None


def check_image(path: Path, role: str) -> None:
    """The cheap check before any work: the file exists and its header declares an allowed size (the
    limits of agents/measure/image_limits.toml); nothing is decoded, so each file is decoded once, later."""
    from agents.measure.imaging import ImageInputError
    from agents.measure.imaging import check_image as check_header

    try:
        check_header(path)
    except ImageInputError as exc:
        raise InputError(f"--{role}: {exc}") from None


BLANK_HINT = "nothing was generated from it; --allow-blank runs it anyway"


def blank_sketch(path: Path) -> str | None:
    """Why the Visual Analyst finds nothing to animate in the sketch (blank, uniform or noise only), or None.
    ./m4 run and batch ask before spending a generation on it."""
    from agents.measure.visual_analyst import analyse

    analysis = analyse(read_image(path, "sketch"), path.name)
    if not analysis.empty:
        return None
    return "no strokes found (blank, uniform or noise only)"


def add_pair_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sketch", action="append", help="sketch image (repeatable); default: the bundled sketches")
    parser.add_argument("--reference", help="style reference image; default: the bundled madoka_lineart.png")
    parser.add_argument("--no-reference", action="store_true", help="plan without a reference (R = 0)")
    parser.add_argument("--tags", default="", help="subject tags for the prompts, comma separated")
    parser.add_argument("--out", default="m4-output", help="output folder (default: ./m4-output)")


def resolve_pairs(sketches: list[str] | None, reference: str | None,
                  no_reference: bool) -> list[tuple[Path, Path | None]]:
    """(sketch, reference) pairs from the options; every file's header is checked here so a bad one fails
    first (missing, not an image, declaring too many pixels or too small a side)."""
    paths = [Path(s) for s in sketches] if sketches else sorted((FIXTURES / "sketches").glob("*.png"))
    ref = None if no_reference else Path(reference) if reference else DEFAULT_REFERENCE
    if ref is not None:
        check_image(ref, "reference")
    for s in paths:
        check_image(s, "sketch")
    return [(s.resolve(), ref.resolve() if ref is not None else None) for s in paths]


def pairs_from_args(args: argparse.Namespace) -> list[tuple[Path, Path | None]] | None:
    """resolve_pairs for parsed add_pair_arguments options; prints the error and returns None on bad input."""
    try:
        return resolve_pairs(args.sketch, args.reference, args.no_reference)
    except InputError as exc:
        print(error_line(exc), file=sys.stderr)
        return None
