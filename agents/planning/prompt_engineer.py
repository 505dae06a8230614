"""The Prompt Engineer: stage-separated Danbooru-style prompts for the two M4 passes (seed 004 sections 7, 15).

KS1 is the structure authority (pose, proportions, accessories; no style language), KS2 the
cleanup authority (line continuity, polish, anti-artifact negatives, reference style only when
safe). Tag order follows Animagine XL 3.1's card: count tag, character, series, everything else,
quality tags last. Subject tags may carry `character:` / `series:` prefixes to be placed as such.

The KS1/KS2 separation holds by construction (KS1 is assembled only from KS1 vocabulary, and
subject tags containing a KS2-only phrase are routed to KS2) and is checked again on the result:
a violation raises PromptContractError instead of returning a contaminated prompt.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from ..measure.analysis_types import VisualAnalysis
from ..policy import Policy, default_policy
from .plan_types import Plan

_WEIGHTED = re.compile(r"^\((?P<tag>.+?)(?::(?P<w>[0-9]*\.?[0-9]+))?\)$")
_COUNT = re.compile(r"^(\d+\+?(girl|boy|other)s?|multiple (girls|boys|others)|no humans|solo)$")
_MAX_TAG_CHARS = 80


class PromptContractError(ValueError):
    """A built prompt broke the stage separation contract (KS2-only language in KS1, identical stages)."""


@dataclass
class StagePrompts:
    ks1_positive: str
    ks1_negative: str
    ks2_positive: str
    ks2_negative: str
    notes: list[str] = field(default_factory=list)

    def prompts(self) -> dict[str, str]:
        return {k: getattr(self, k) for k in ("ks1_positive", "ks1_negative", "ks2_positive", "ks2_negative")}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def tag_key(tag: str) -> str:
    """Identity of a tag for dedupe/conflicts: case, whitespace, underscores and (tag:w) weight ignored."""
    t = " ".join(tag.replace("_", " ").split()).lower()
    m = _WEIGHTED.match(t)
    if m:
        t = " ".join(m.group("tag").split())
    return t


def _weight(tag: str) -> float:
    m = _WEIGHTED.match(tag.strip())
    if m and m.group("w"):
        return float(m.group("w"))
    return 1.1 if m else 1.0


def clean_tag(tag: str) -> str:
    """Danbooru style as Animagine reads it: lower case, spaces for underscores, single spaces."""
    return " ".join(tag.replace("_", " ").split()).lower()


def dedupe(tags: list[str]) -> list[str]:
    """First occurrence keeps its place; if a later duplicate carries a stronger weight, that text wins."""
    out: list[str] = []
    index: dict[str, int] = {}
    for raw in tags:
        tag = clean_tag(raw)
        key = tag_key(tag)
        if not key:
            continue
        if key in index:
            i = index[key]
            if _weight(tag) > _weight(out[i]):
                out[i] = tag
            continue
        index[key] = len(out)
        out.append(tag)
    return out


def parse_tags(text_or_list: str | list[str] | None) -> list[str]:
    """Comma-separated text (or a list) -> clean tags; newlines count as commas."""
    if text_or_list is None:
        return []
    items = text_or_list.replace("\n", ",").split(",") if isinstance(text_or_list, str) else list(text_or_list)
    tags = []
    for item in items:
        if not isinstance(item, str):
            raise ValueError(f"subject_tags: expected text tags, got {item!r}")
        tag = " ".join(item.split())
        if len(tag) > _MAX_TAG_CHARS:
            raise ValueError(f"subject_tags: tag {tag[:30]!r}... is longer than {_MAX_TAG_CHARS} characters")
        if tag:
            tags.append(tag)
    return tags


def _contains_phrase(tag: str, phrases: list[str]) -> str | None:
    key = tag_key(tag)
    return next((p for p in phrases if p in key), None)


def _order_subject(tags: list[str]) -> tuple[list[str], list[str], list[str], list[str]]:
    counts, characters, series, general = [], [], [], []
    for tag in tags:
        low = tag.lower()
        if low.startswith("character:"):
            characters.append(tag.split(":", 1)[1].strip())
        elif low.startswith("series:"):
            series.append(tag.split(":", 1)[1].strip())
        elif _COUNT.match(tag_key(tag)):
            counts.append(tag)
        else:
            general.append(tag)
    return counts, [t for t in characters if t], [t for t in series if t], general


def _resolve(positive: list[str], negative: list[str], own: list[str], pairs: list[tuple[str, str]],
             stage: str, notes: list[str]) -> list[str]:
    """Drop positive tags that the stage's negatives forbid or that contradict the stage's own tags."""
    neg_keys = {tag_key(t) for t in negative}
    own_keys = {tag_key(t) for t in own}
    present = {tag_key(t) for t in positive}
    drop: set[str] = set()
    for tag in positive:
        k = tag_key(tag)
        if k in neg_keys and k not in own_keys:
            drop.add(k)
            notes.append(f"{stage}: dropped '{tag}' from the positive (it is one of the stage's negatives)")
    for a, b in pairs:
        ka, kb = tag_key(a), tag_key(b)
        if ka in present and kb in present:
            loser = kb if ka in own_keys or kb not in own_keys else ka
            if loser not in drop:
                drop.add(loser)
                notes.append(f"{stage}: dropped '{loser}' (contradicts '{ka if loser == kb else kb}')")
    return [t for t in positive if tag_key(t) not in drop]


def build_prompts(plan: Plan, analysis: VisualAnalysis, subject_tags: list[str] | None = None,
                  policy: Policy | None = None) -> StagePrompts:
    """Four prompts for the plan. subject_tags (user text) win over the analysis's own tags when given."""
    if not isinstance(plan, Plan):
        raise ValueError(f"plan: expected a Plan, got {type(plan).__name__}")
    if not isinstance(analysis, VisualAnalysis):
        raise ValueError(f"analysis: expected a VisualAnalysis, got {type(analysis).__name__}")
    pol = policy or default_policy()
    v = pol.prompts
    d = plan.diagnostics
    notes: list[str] = []
    ks2_only = [tag_key(p) for p in v["ks2_only"]]

    raw_tags = parse_tags(subject_tags if subject_tags is not None else list(analysis.subject_tags))
    ks1_subject, ks2_extra = [], []
    for tag in raw_tags:
        hit = _contains_phrase(tag, ks2_only)
        if hit:
            ks2_extra.append(tag)
            notes.append(f"subject tag '{tag}' is KS2-only language ('{hit}'): kept out of KS1")
        else:
            ks1_subject.append(tag)
    counts, characters, series, general = _order_subject(dedupe(ks1_subject))
    subject = counts + characters + series + general

    p_risk = float(plan.signals.get("P", 0.0))
    h_risk = float(plan.signals.get("H", 0.0))
    conflict = float(d.get("conflict_penalty", 1.0))
    mode = str(d.get("reference_mode", "off"))

    # KS1: structure authority.
    ks1_own = list(v["ks1_structure"])
    ks1_neg = list(v["base_negative"]) + list(v["ks1_negative"])
    if p_risk >= v["pose_guard_p"]:
        ks1_own += list(v["ks1_pose_guard"])
        ks1_neg += list(v["ks1_pose_guard_negative"])
        notes.append(f"P = {p_risk:.2f} >= {v['pose_guard_p']:g}: pose-preserving tags in KS1")
    if plan.case == "multi_object":
        ks1_neg += list(v["ks1_multi_negative"])
        notes.append("multi_object: anti-duplicate negatives in KS1")
    ks1_pos = dedupe(subject + ks1_own + list(v["quality"]))
    ks1_neg = dedupe(ks1_neg)
    ks1_pos = _resolve(ks1_pos, ks1_neg, ks1_own, list(v["conflict_pairs"]), "KS1", notes)

    # KS2: cleanup authority.
    ks2_own = list(v["ks2_cleanup"])
    if mode in v["style_modes"] and conflict < v["style_max_conflict"]:
        ks2_own += list(v["ks2_style"])
        notes.append(f"reference_mode '{mode}' with conflict {conflict:.2f}: reference style directives in KS2")
    ks2_neg = list(v["base_negative"])
    if h_risk >= v["strong_negative_h"]:
        ks2_neg += list(v["ks2_strong_negative"])
        notes.append(f"H = {h_risk:.2f} >= {v['strong_negative_h']:g}: stronger anti-artifact negatives in KS2")
    ks2_neg += list(v["ks2_negative"])
    if d.get("reference_colored"):
        ks2_neg += list(v["ks2_colored_negative"])
        notes.append("colored reference: colour negatives in KS2")
    ks2_pos = dedupe(subject + ks2_extra + ks2_own + list(v["quality"]))
    ks2_neg = dedupe(ks2_neg)
    ks2_pos = _resolve(ks2_pos, ks2_neg, ks2_own, list(v["conflict_pairs"]), "KS2", notes)

    result = StagePrompts(", ".join(ks1_pos), ", ".join(ks1_neg), ", ".join(ks2_pos), ", ".join(ks2_neg), notes)
    check_separation(result, pol)
    return result


def check_separation(prompts: StagePrompts, policy: Policy | None = None) -> None:
    """Raise PromptContractError unless KS1 is free of KS2-only phrases and the stages differ."""
    pol = policy or default_policy()
    ks2_only = [tag_key(p) for p in pol.prompts["ks2_only"]]
    for name in ("ks1_positive", "ks1_negative"):
        for tag in getattr(prompts, name).split(","):
            hit = _contains_phrase(tag, ks2_only)
            if hit:
                raise PromptContractError(f"{name}: contains the KS2-only phrase '{hit}' (in '{tag.strip()}')")
    if tag_key(prompts.ks1_positive) == tag_key(prompts.ks2_positive):
        raise PromptContractError("ks1_positive and ks2_positive are identical: the stages must differ")
    if tag_key(prompts.ks1_negative) == tag_key(prompts.ks2_negative):
        raise PromptContractError("ks1_negative and ks2_negative are identical: the stages must differ")
