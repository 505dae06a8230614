"""`python -m cli <command>`: the commands behind ./m4."""

from __future__ import annotations

import sys


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in {"demo"}:
        print("usage: python -m cli demo [--help]", file=sys.stderr)
        return 2
    command, rest = sys.argv[1], sys.argv[2:]
    if command == "demo":
        from cli.demo import main as demo

        return demo(rest)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
