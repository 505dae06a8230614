#!/usr/bin/env bash
# M4 Director's two commands. Each sets everything up itself (venv, torch, the ComfyUI host, chromium).
#   ./m4 demo [options]   the main job: analyse, plan and run the locked template through a headless ComfyUI
#   ./m4 test [pytest args]   every test tier, ruff and the packaging checks
#   ./m4 <command> [options]  any other command of `python -m cli` (./m4 help lists them)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cmd="${1:-}"
[ $# -gt 0 ] && shift
case "$cmd" in
  "")
    echo "usage: ./m4 demo [--help] | ./m4 test [pytest args] | ./m4 <command> [--help]" >&2
    exit 2
    ;;
  test)
    py="$(bash "$here/scripts/bootstrap.sh" | tail -n 1)"
    cd "$here"
    echo "[m4 test] ruff"
    "$py" -m ruff check .
    echo "[m4 test] comfy node validate (Registry metadata and security checks)"
    "${M4_CACHE:-$HOME/.cache/m4-director}/comfy-cli-1.23.0/bin/comfy" --skip-prompt --no-enable-telemetry node validate
    echo "[m4 test] pytest (tiers: pure, inprocess, server, browser)"
    cd "$here/tests"
    M4_REQUIRE_TIERS=all exec "$py" -m pytest "$@"
    ;;
  *)
    py="$(bash "$here/scripts/bootstrap.sh" | tail -n 1)"
    cd "$here" && exec "$py" -m cli "$cmd" "$@"
    ;;
esac
