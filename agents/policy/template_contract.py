"""The template contract: which node of the locked API templates plays which role (seed 004 section 13).

The driven nodes live in [nodes] (with the inputs the plan drives); this is every other node id the
code touches: the LoadImage roles, the SaveImage stages, the ids the in-graph planning nodes take,
and the adaptive preset's patch node per sampler. Validated like the rest of the policy: an error
names the key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

IMAGE_ROLES = ("sketch", "reference")
SAVE_STAGES = ("stage1", "final")
PLANNING_ROLES = ("analyst", "compare", "director", "prompts", "unpack")
FEED_ROLES = ("pose_keypoint", "final_image")


class ContractError(ValueError):
    """A [template] entry that is missing, mistyped or collides with another node id."""


@dataclass(frozen=True)
class TemplateContract:
    """Node ids by role. `adaptive` maps a driven sampler's id to its M4AdaptiveCFG patch's id."""

    images: Mapping[str, str]
    saves: Mapping[str, str]
    planning: Mapping[str, str]
    adaptive: Mapping[str, str]
    feeds: Mapping[str, str]

    def all_ids(self) -> set[str]:
        return {*self.images.values(), *self.saves.values(), *self.planning.values(), *self.adaptive.values(),
                *self.feeds.values()}


def _node_id(value: Any, path: str) -> str:
    if not isinstance(value, str) or not value.isdigit():
        raise ContractError(f"policy key {path}: expected a node id (a string of digits), got {value!r}")
    return value


def _roles(table: Any, roles: tuple[str, ...], path: str) -> dict[str, str]:
    if not isinstance(table, dict):
        raise ContractError(f"policy key {path}: expected a table, got {table!r}")
    unknown = sorted(set(table) - set(roles))
    if unknown:
        raise ContractError(f"policy key {path}.{unknown[0]}: unknown role (expected one of {list(roles)})")
    missing = [r for r in roles if r not in table]
    if missing:
        raise ContractError(f"policy key {path}.{missing[0]}: missing")
    return {role: _node_id(table[role], f"{path}.{role}") for role in roles}


def parse_template_contract(raw: Any, driven: Mapping[str, Any]) -> TemplateContract:
    """[template] of the policy; `driven` is the [nodes] map (a role's id may not be a driven node's)."""
    if not isinstance(raw, dict):
        raise ContractError(f"policy key template: expected a table, got {raw!r}")
    known = {"images", "saves", "planning", "adaptive", "feeds"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ContractError(f"policy key template.{unknown[0]}: unknown key (expected one of {sorted(known)})")
    for key in sorted(known - set(raw)):
        raise ContractError(f"policy key template.{key}: missing")
    adaptive_raw = raw["adaptive"]
    if not isinstance(adaptive_raw, dict):
        raise ContractError(f"policy key template.adaptive: expected a table, got {adaptive_raw!r}")
    adaptive = {}
    for sampler, patch in adaptive_raw.items():
        path = f"template.adaptive.{sampler}"
        if sampler not in driven:
            raise ContractError(f"policy key {path}: {sampler!r} is not a driven node in [nodes]")
        adaptive[sampler] = _node_id(patch, path)
    contract = TemplateContract(
        images=MappingProxyType(_roles(raw["images"], IMAGE_ROLES, "template.images")),
        saves=MappingProxyType(_roles(raw["saves"], SAVE_STAGES, "template.saves")),
        planning=MappingProxyType(_roles(raw["planning"], PLANNING_ROLES, "template.planning")),
        adaptive=MappingProxyType(adaptive),
        feeds=MappingProxyType(_roles(raw["feeds"], FEED_ROLES, "template.feeds")),
    )
    seen: dict[str, str] = {node_id: "a driven node in [nodes]" for node_id in driven}
    for section in ("images", "saves", "planning", "adaptive", "feeds"):
        for role, node_id in getattr(contract, section).items():
            if node_id in seen:
                raise ContractError(f"policy key template.{section}.{role}: node id {node_id} is already "
                                    f"{seen[node_id]}")
            seen[node_id] = f"template.{section}.{role}"
    return contract
