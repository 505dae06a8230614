"""Pure-Python agents of M4 Director, one subpackage per family (AGENTS.md has the map and the import rules).
Nothing here imports comfy, comfy_api, comfy_extras, folder_paths, server or nodes."""
