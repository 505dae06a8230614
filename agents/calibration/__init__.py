"""The calibration family: fits from the run log (ratings preferred over verdicts) into a calibrated policy overlay."""
