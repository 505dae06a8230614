"""Pure-Python agents of M4 Director. Nothing here imports comfy, comfy_api, folder_paths or server."""
