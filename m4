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
    # the clean-install test's venv: ComfyUI's and the pack's requirements only
    clean_py="$(bash "$here/scripts/bootstrap.sh" --clean | tail -n 1)"
    export M4_CLEAN_PYTHON="$clean_py"
    cd "$here"
    echo "[m4 test] ruff"
    "$py" -m ruff check .
    echo "[m4 test] mypy (agents/ and nodes/)"
    "$py" scripts/typecheck.py
    echo "[m4 test] comfy node validate (Registry metadata and security checks)"
    "${M4_CACHE:-$HOME/.cache/m4-director}/comfy-cli-1.23.0/bin/comfy" --skip-prompt --no-enable-telemetry node validate
    cd "$here/tests"
    if [ $# -gt 0 ]; then
      M4_REQUIRE_TIERS=all exec "$py" -m pytest "$@"
    fi
    # The browser tier on the newest comfyui-frontend-package too, classic canvas and the Nodes 2.0 renderer;
    # then every tier on the pinned frontend (its closing line is the run's last).
    echo "[m4 test] browser tier on the newest frontend (classic canvas)"
    M4_FRONTEND=newest M4_REQUIRE_TIERS=browser "$py" -m pytest -q browser
    echo "[m4 test] browser tier on the newest frontend (Nodes 2.0)"
    M4_FRONTEND=newest M4_NODES2=1 M4_REQUIRE_TIERS=browser "$py" -m pytest -q browser
    echo "[m4 test] pytest (tiers: pure, inprocess, server, browser; pinned frontend)"
    M4_REQUIRE_TIERS=all exec "$py" -m pytest
    ;;
  *)
    py="$(bash "$here/scripts/bootstrap.sh" | tail -n 1)"
    cd "$here" && exec "$py" -m cli "$cmd" "$@"
    ;;
esac
