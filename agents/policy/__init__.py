"""The policy family: the validated data every other family reads (the locked M4 policy and its loader)."""

from .loader import (
    CASES,
    DEFAULT_POLICY_PATH,
    PROMPT_FIELDS,
    REFERENCE_MODES,
    VALUE_KINDS,
    VALUE_NAMES,
    CaseProfile,
    NodeDriver,
    Policy,
    PolicyError,
    default_policy,
    load_policy,
    parse_policy,
    raw_default_policy,
)

__all__ = [
    "CASES",
    "DEFAULT_POLICY_PATH",
    "PROMPT_FIELDS",
    "REFERENCE_MODES",
    "VALUE_KINDS",
    "VALUE_NAMES",
    "CaseProfile",
    "NodeDriver",
    "Policy",
    "PolicyError",
    "default_policy",
    "load_policy",
    "parse_policy",
    "raw_default_policy",
]
