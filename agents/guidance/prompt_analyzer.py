"""Prompt complexity -> base guidance scale.

The seed wants a trained ~10M-parameter model here. Its training data (prompts labelled with the
scale that maximised CLIP score) does not exist in this project, so this is a documented
heuristic behind the PromptAnalyzer protocol: a trained model can replace it without touching
the controller or the nodes.

Heuristic: a prompt asks for more guidance when it names more separate things and relations
(clauses, content words, relation words, counts). From a conditioning tensor alone the same idea
is read as how many independent directions the token embeddings span (effective rank).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import torch

from .data import tunable
from .errors import GuidanceInputError

# The seed's ranges: simple prompts ~5.5, complex ones ~9.5 (guidance.toml).
BASE_SIMPLE = tunable("prompt_base_simple")
BASE_COMPLEX = tunable("prompt_base_complex")

_RELATIONS = frozenset(
    "with and holding wearing behind beside between under over above below while near next".split()
    + "on in at into onto from of".split()
)
_STOPWORDS = frozenset("a an the very is are this that it its".split())
_WORD = re.compile(r"[a-zA-Z][a-zA-Z'-]*|\d+")


@dataclass(frozen=True)
class GuidanceProfile:
    complexity: float  # 0 = one simple subject, 1 = many subjects and relations
    base_guidance: float  # BASE_SIMPLE .. BASE_COMPLEX
    source: str  # "text", "conditioning" or "default"
    features: dict[str, float] = field(default_factory=dict)


@runtime_checkable
class PromptAnalyzer(Protocol):
    """Where a trained prompt model plugs in."""

    def analyze(self, prompt: str | None, embeddings: torch.Tensor | None) -> GuidanceProfile: ...


def _saturate(x: float, scale: float) -> float:
    return 1.0 - math.exp(-max(x, 0.0) / scale)


class HeuristicPromptAnalyzer:
    """Text features when a prompt is given, the conditioning tensor otherwise."""

    def analyze(self, prompt: str | None, embeddings: torch.Tensor | None) -> GuidanceProfile:
        if prompt is not None and prompt.strip():
            return self.from_text(prompt)
        if embeddings is not None:
            return self.from_embeddings(embeddings)
        return GuidanceProfile(0.5, _base(0.5), "default", {})

    def from_text(self, prompt: str) -> GuidanceProfile:
        if not isinstance(prompt, str):
            raise GuidanceInputError(f"prompt: expected text, got {type(prompt).__name__}")
        words = [w.lower() for w in _WORD.findall(prompt)]
        content = {w for w in words if w not in _STOPWORDS and w not in _RELATIONS and not w.isdigit()}
        clauses = [c for c in re.split(r"[,;.()\n]|\band\b", prompt) if c.strip()]
        relations = sum(1 for w in words if w in _RELATIONS)
        counts = sum(1 for w in words if w.isdigit() or w in {"two", "three", "four", "five", "many", "several"})
        features = {
            "content_words": float(len(content)),
            "clauses": float(len(clauses)),
            "relations": float(relations),
            "counts": float(counts),
        }
        # Each term saturates so a 75-token tag list does not pin everything at 1.
        complexity = (
            0.35 * _saturate(len(content) - 1, 8.0)
            + 0.30 * _saturate(len(clauses) - 1, 4.0)
            + 0.25 * _saturate(relations, 3.0)
            + 0.10 * _saturate(counts, 1.0)
        )
        complexity = min(max(complexity, 0.0), 1.0)
        return GuidanceProfile(complexity, _base(complexity), "text", features)

    def from_embeddings(self, embeddings: torch.Tensor) -> GuidanceProfile:
        if not isinstance(embeddings, torch.Tensor) or embeddings.ndim not in (2, 3):
            shape = tuple(embeddings.shape) if isinstance(embeddings, torch.Tensor) else type(embeddings).__name__
            raise GuidanceInputError(
                f"conditioning: expected a [tokens, dim] or [batch, tokens, dim] tensor, got {shape}"
            )
        e = embeddings.detach().float()
        if e.ndim == 2:
            e = e.unsqueeze(0)
        if e.shape[1] < 2 or not torch.isfinite(e).all():
            raise GuidanceInputError("conditioning: needs at least 2 finite token embeddings")
        ranks = []
        for item in e:
            centred = item - item.mean(dim=0, keepdim=True)
            s = torch.linalg.svdvals(centred)
            energy = s.square()
            total = float(energy.sum())
            # participation ratio: how many directions carry the variance
            ranks.append(0.0 if total <= 0 else total**2 / float(energy.square().sum()))
        eff_rank = sum(ranks) / len(ranks)
        limit = max(min(e.shape[1], e.shape[2]) - 1, 1)
        complexity = min(max(_saturate(eff_rank - 1.0, max(limit / 4.0, 1.0)), 0.0), 1.0)
        return GuidanceProfile(complexity, _base(complexity), "conditioning", {"effective_rank": eff_rank})


def _base(complexity: float) -> float:
    return BASE_SIMPLE + (BASE_COMPLEX - BASE_SIMPLE) * complexity
