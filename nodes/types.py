"""Custom socket types of the pack. Their names are part of saved workflows: never rename them."""

from comfy_api.v0_0_2 import io

Analysis = io.Custom("M4_ANALYSIS")  # agents.measure.analysis_types.VisualAnalysis, one per batch item (list)
ReferenceReport = io.Custom("M4_REFERENCE_REPORT")  # agents.measure.analysis_types.ReferenceReport
Plan = io.Custom("M4_PLAN")  # the Animation Director's plan
GuidanceSchedule = io.Custom("M4_GUIDANCE_SCHEDULE")  # adaptive CFG: the schedule one run used
PoseKeypoint = io.Custom("POSE_KEYPOINT")  # controlnet_aux's type, so its preprocessors wire in

CATEGORY = "M4 Director"
InbetweenReport = io.Custom("M4_INBETWEEN_REPORT")  # agents.inbetween.report.SequenceReport
AudioFeatures = io.Custom("M4_AUDIO_FEATURES")  # agents.patterns.audio_features.AudioFeatures (one clip)
