"""Runtime: what talks to a ComfyUI server (client, apply layer, run log, the one-pair runner)."""
