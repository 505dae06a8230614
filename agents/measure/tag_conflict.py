"""Text conflict between a sketch's tags and a reference's tags (Danbooru-style, comma separated).

Each rule gives a score; text_conflict is the largest (one real contradiction is enough to distrust
the reference, several small ones do not add up past the worst):
- character count / gender (1girl vs 2girls, 1girl vs 1boy, solo vs multiple girls): 1.0
- hair colour, both sides name one and they share none: HAIR_WEIGHT
- eye colour, likewise: EYE_WEIGHT
- accessories (glasses, hat, eyepatch, ...) named on one side only: ACCESSORY_WEIGHT each, capped at
  ACCESSORY_CAP. Only judged when both sides gave tags: an empty list says nothing about absence.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

HAIR_WEIGHT = 0.7
EYE_WEIGHT = 0.5
ACCESSORY_WEIGHT = 0.4
ACCESSORY_CAP = 0.8
COUNT_WEIGHT = 1.0

_COLOURS = {
    "black", "white", "grey", "gray", "silver", "blonde", "blond", "brown", "red", "orange", "yellow",
    "green", "blue", "aqua", "purple", "pink", "light brown", "dark blue", "light blue", "light purple",
    "dark green", "platinum blonde", "streaked", "multicolored", "two-tone", "gradient",
}
_COLOUR_ALIASES = {"gray": "grey", "blond": "blonde"}
ACCESSORIES = frozenset({
    "glasses", "sunglasses", "eyewear", "goggles", "eyepatch", "mask", "surgical mask", "hat", "cap",
    "beret", "helmet", "hood", "crown", "tiara", "halo", "horns", "animal ears", "cat ears", "fox ears",
    "headphones", "hairband", "headband", "hair ribbon", "hair bow", "hairclip", "hair ornament",
    "earrings", "necklace", "choker", "scarf", "necktie", "bowtie", "gloves", "wings", "tail",
    "weapon", "sword", "gun", "staff", "umbrella", "bag", "backpack",
})
# Eyewear kinds are one accessory for the conflict rule: "glasses" vs "sunglasses" is no conflict.
_ACCESSORY_FAMILY = {"sunglasses": "glasses", "eyewear": "glasses", "goggles": "glasses",
                     "surgical mask": "mask", "cap": "hat", "beret": "hat", "cat ears": "animal ears",
                     "fox ears": "animal ears", "headband": "hairband"}
_COUNT_RE = re.compile(r"^(\d+|6\+)(girl|boy|other)s?$")
_MULTI_RE = re.compile(r"^multiple (girl|boy|other)s$")


@dataclass
class TagConflict:
    """text_conflict 0..1 and a readable reason per contradiction found."""

    score: float = 0.0
    reasons: list[str] = field(default_factory=list)


def check_tags(value: object, name: str) -> None:
    """ValueError naming the argument unless value is None, a text or an iterable of texts."""
    if value is None or isinstance(value, str):
        return
    if isinstance(value, bytes | bytearray) or not isinstance(value, Iterable):
        raise ValueError(f"{name}: expected a comma-separated text or a list of tags, got {type(value).__name__}")
    bad = [type(t).__name__ for t in value if not isinstance(t, str)] if isinstance(value, list | tuple | set) else []
    if bad:  # other iterables are checked as parse_tags reads them (reading one here would use it up)
        raise ValueError(f"{name}: expected tags as text, got a {bad[0]} among them")


def parse_tags(text: str | Iterable[str] | None) -> list[str]:
    """Normalise a tag string or list: lower case, underscores to spaces, prompt weights stripped."""
    if text is None:
        return []
    if isinstance(text, str):
        items: Iterable[str] = text.replace("\n", ",").split(",")
    else:
        items = text
    out: list[str] = []
    for raw in items:
        if not isinstance(raw, str):
            raise ValueError(f"tags: expected strings, got {type(raw).__name__}")
        tag = re.sub(r":[-+]?\d*\.?\d+\)?$", "", raw.strip().lower())  # "(tag:1.2)" -> "(tag"
        tag = tag.strip("()[]{} ").replace("_", " ")
        tag = re.sub(r"\s+", " ", tag)
        if tag and tag not in out:
            out.append(tag)
    return out


def _colours(tags: list[str], noun: str) -> set[str]:
    found = set()
    for t in tags:
        if t.endswith(" " + noun):
            colour = t[: -len(noun) - 1]
            if colour in _COLOURS:
                found.add(_COLOUR_ALIASES.get(colour, colour))
    return found


def _counts(tags: list[str]) -> dict[str, str]:
    """Per gender: an exact count ("1", "2", "6+") or "many"; "solo" means one character in total."""
    counts: dict[str, str] = {}
    for t in tags:
        m = _COUNT_RE.match(t)
        if m:
            counts[m.group(2)] = m.group(1)
            continue
        m = _MULTI_RE.match(t)
        if m:
            counts.setdefault(m.group(1), "many")
    if "solo" in tags and not counts:
        counts["any"] = "1"
    return counts


def _total(c: dict[str, str]) -> int | None:
    """Characters in total, None for "two or more, unknown how many"."""
    if any(v in ("many", "6+") for v in c.values()):
        return None
    return sum(int(v) for v in c.values())


def _count_conflict(a: dict[str, str], b: dict[str, str]) -> str | None:
    if not a or not b:
        return None
    ta, tb = _total(a), _total(b)
    shown = (str(ta) if ta is not None else "2+", str(tb) if tb is not None else "2+")
    if (ta is not None and tb is not None and ta != tb) or (None in (ta, tb) and 1 in (ta, tb)):
        return f"character count differs ({shown[0]} vs {shown[1]})"
    if ta is not None and ta == tb and "any" not in a and "any" not in b and a != b:
        return f"different characters ({', '.join(sorted(a))} vs {', '.join(sorted(b))})"
    return None


def _accessories(tags: list[str]) -> set[str]:
    return {_ACCESSORY_FAMILY.get(t, t) for t in tags if t in ACCESSORIES}


def text_conflict(sketch_tags: str | Iterable[str] | None, reference_tags: str | Iterable[str] | None) -> TagConflict:
    """Compare the two tag lists with the rules of the module docstring."""
    a, b = parse_tags(sketch_tags), parse_tags(reference_tags)
    result = TagConflict()
    if not a or not b:
        return result
    scored: list[tuple[float, str]] = []
    why = _count_conflict(_counts(a), _counts(b))
    if why:
        scored.append((COUNT_WEIGHT, why))
    for noun, weight in (("hair", HAIR_WEIGHT), ("eyes", EYE_WEIGHT)):
        ca, cb = _colours(a, noun), _colours(b, noun)
        if ca and cb and not (ca & cb):
            scored.append((weight, f"{noun} colour differs ({', '.join(sorted(ca))} vs {', '.join(sorted(cb))})"))
    only = sorted(_accessories(a) ^ _accessories(b))
    if only:
        scored.append((min(ACCESSORY_CAP, ACCESSORY_WEIGHT * len(only)),
                       f"accessory on one side only: {', '.join(only)}"))
    if scored:
        result.score = max(s for s, _ in scored)
        result.reasons = [w for _, w in scored]
    return result
