"""`python -m cli <command>`: the commands behind ./m4."""

from __future__ import annotations

import argparse
import importlib
import os
import sqlite3
import sys
from typing import NoReturn

# command -> (module with main(argv) -> int, one-line help). Modules load only when their command runs.
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("cli.demo", "plan the bundled (or given) sketches and run the locked template on a headless ComfyUI"),
    "plan": ("cli.plan_cmd", "analyse and plan sketches with the agents only (no server): plan.json + report"),
    "run": ("cli.run_cmd", "one sketch + reference through the template on a server (default: a local stand-in one)"),
    "batch": ("cli.batch", "many pairs across one or more servers, resumable from the run log"),
    "runs": ("cli.runs_cmd", "list, filter and export the run log (CSV/JSON)"),
    "rate": ("cli.rate_cmd", "rate a logged run good or bad (the outcome calibration prefers)"),
    "calibrate": ("cli.calibrate_cmd", "fit the run log into a calibrated policy overlay (+ HTML report; --dry-run)"),
}


def usage() -> str:
    lines = ["usage: ./m4 <command> [--help]", "", "commands:"]
    lines += [f"  {name:<9} {text}" for name, (_mod, text) in COMMANDS.items()]
    lines += ["  test     every test tier (./m4 test only)"]
    return "\n".join(lines)


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] in {"help", "-h", "--help"}:
        print(usage())
        return 0 if len(sys.argv) >= 2 else 2
    command, rest = sys.argv[1], sys.argv[2:]
    if command not in COMMANDS:
        print(f"error: unknown command {command!r} (./m4 help lists them)", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[command][0])
    usage_error = argparse.ArgumentParser.error
    argparse.ArgumentParser.error = _one_line_usage_error  # type: ignore[method-assign,assignment]
    try:
        code = int(module.main(rest))
    except SystemExit as exc:  # argparse (--help, a bad option) and the commands' own exits
        return exc.code if isinstance(exc.code, int) else 2
    except KeyboardInterrupt:
        print("error: interrupted (Ctrl-C)", file=sys.stderr)
        return 130
    except Exception as exc:  # every error exit is one `error:` line and exit 2, never a traceback
        if os.environ.get(DEBUG_ENV):
            raise
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return 2
    finally:
        argparse.ArgumentParser.error = usage_error  # type: ignore[method-assign]
    return code


def _one_line_usage_error(parser: argparse.ArgumentParser, message: str) -> NoReturn:
    """argparse's error without the usage block: one `error:` line naming the command (exit 2)."""
    print(f"error: {parser.prog}: {' '.join(message.split())} (--help shows the options)", file=sys.stderr)
    raise SystemExit(2)


DEBUG_ENV = "M4_DEBUG"  # set to show the traceback of an error instead of its one line


def one_line(exc: BaseException) -> str:
    """An exception as one line: its message (the project's errors name the input), or for a foreign
    one also its type and where it came from."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, sqlite3.DatabaseError):
        return f"the run log cannot be read ({text}): is it a run log file, complete and not corrupt?"
    if isinstance(exc, ValueError | OSError) or type(exc).__module__.startswith(("agents", "cli")):
        return text
    return f"{type(exc).__name__}: {text} (unexpected; {DEBUG_ENV}=1 shows the traceback)"


if __name__ == "__main__":
    raise SystemExit(main())
