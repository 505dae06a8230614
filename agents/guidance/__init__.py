"""Adaptive classifier-free guidance: pure torch math, no ComfyUI imports.

schedules       noise-level -> guidance multiplier (the seed's S-curve and the comparison schedules)
prompt_analyzer prompt text / conditioning tensor -> complexity and a base scale (heuristic)
quality         denoised estimate + cond/uncond agreement -> adjustment in [-0.3, +0.2] (heuristic)
early_exit      relative-change convergence rule for stopping a sampling loop early
controller      combines them into the per-model-call scale and keeps the schedule it used
data            guidance.toml: every node option (default, range) declared once, and the tunables
"""

from .controller import GuidanceController, GuidanceSettings, ScheduleEntry
from .data import EVENT, OPTION_NAMES, OptionSpec, guidance_data, option_specs, parse_options
from .early_exit import EarlyExit, EarlyExitSettings
from .errors import GuidanceInputError
from .prompt_analyzer import GuidanceProfile, HeuristicPromptAnalyzer, PromptAnalyzer
from .quality import HeuristicQualityPredictor, QualityPredictor, QualitySignals
from .schedules import SCHEDULE_NAMES, Schedule, make_schedule, s_curve_weight

__all__ = [
    "EVENT",
    "OPTION_NAMES",
    "OptionSpec",
    "guidance_data",
    "option_specs",
    "parse_options",
    "SCHEDULE_NAMES",
    "EarlyExit",
    "EarlyExitSettings",
    "GuidanceController",
    "GuidanceInputError",
    "GuidanceProfile",
    "GuidanceSettings",
    "HeuristicPromptAnalyzer",
    "HeuristicQualityPredictor",
    "PromptAnalyzer",
    "QualityPredictor",
    "QualitySignals",
    "Schedule",
    "ScheduleEntry",
    "make_schedule",
    "s_curve_weight",
]
