"""Type-check agents/ and nodes/ with mypy, as the package ComfyUI loads (custom_nodes.<folder>).

The pack's modules import each other relatively (`from ..agents import ...`), so mypy must see the
repository as one package: this links it under a neutral name in a temporary folder and checks
`m4_director.agents` and `m4_director.nodes` there, with pyproject.toml's [tool.mypy] settings.
ComfyUI is not on the search path: its modules are untyped Any here (checking against its sources took
minutes and reports its own V3 design, `execute(cls, **kwargs)` overridden by every node, as errors).

    python scripts/typecheck.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="m4-typecheck-") as tmp:
        (Path(tmp) / "m4_director").symlink_to(REPO, target_is_directory=True)
        env = dict(os.environ, MYPYPATH=tmp)
        cmd = [sys.executable, "-m", "mypy", "--config-file", str(REPO / "pyproject.toml"),
               "--cache-dir", str(Path(tmp) / ".mypy_cache"), "-p", "m4_director.agents", "-p", "m4_director.nodes"]
        return subprocess.run(cmd, cwd=tmp, env=env, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
