"""M4 Director: ComfyUI registration only (V3 schema).

Import-safe on purpose: no downloads, no network, no sys.path edits, no heavy imports. The node
modules (and with them comfy_api) load only when ComfyUI asks for the extension.
"""

WEB_DIRECTORY = "./web"


async def comfy_entrypoint():
    from .nodes import M4DirectorExtension

    return M4DirectorExtension()
