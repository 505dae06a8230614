"""Keyframe imputation (seed 003): keys kept exact, hold/dissolve/flow/line-aware in-betweens, keep masks, report."""
