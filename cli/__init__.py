"""Command-line helpers: the local headless ComfyUI server and the stand-in checkpoint it loads."""
