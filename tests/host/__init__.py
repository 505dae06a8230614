"""The test host: a real ComfyUI for every tier (in-process, server, browser)."""
