"""The family's one-line errors: each names the input or data key that was wrong."""

from __future__ import annotations


class PatternsError(ValueError):
    """Bad input or bad data for the patterns family; the message starts with the input's name."""


class PatternsConfigError(PatternsError):
    """patterns.toml (or an override) has a missing, unknown or out-of-range key; the message names it."""
