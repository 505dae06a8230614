#!/usr/bin/env bash
# Builds everything the demo and the tests need, from nothing, idempotently:
# a venv outside the clone (keyed by the requirement files), the pinned ComfyUI host, chromium.
# Prints the venv's python path on its last line. With --clean: builds (once) and prints instead the python of
# a venv holding only ComfyUI's and the pack's requirements (what a user's ComfyUI has), for the clean-install test.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${M4_CACHE:-$HOME/.cache/m4-director}"
mkdir -p "$cache"
# One build at a time: parallel callers wait for the first one and then reuse its result.
exec 9>"$cache/.bootstrap.lock"
flock 9
log() { echo "[bootstrap] $*" >&2; }

# The ComfyUI tree (user's own via COMFYUI_PATH, else the pinned one).
comfy="$(python3 "$here/scripts/comfy_host.py")"
log "ComfyUI host: $comfy"

# Bump VENV_REV when the install steps below change; requirement edits change the key by themselves.
VENV_REV=2
python3 "$here/scripts/comfy_host.py" --requirements > "$cache/comfy-requirements.txt"

# build_venv DIR [REQUIREMENT FILE...]: torch from local disk, ComfyUI's requirements, the given files.
build_venv() {
  local venv="$1"; shift
  local reqs=()
  for r in "$@"; do reqs+=(-r "$r"); done
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --upgrade pip >&2
  "$venv/bin/python" -m pip install --quiet torch==2.14.1 torchvision==0.29.1 >&2
  "$venv/bin/python" -m pip install --quiet torch==2.14.1 torchvision==0.29.1 \
    -r "$cache/comfy-requirements.txt" "${reqs[@]}" >&2
  # ComfyUI's audio nodes (LoadAudio, SaveAudio, and the AUDIO preview) import torchaudio and use only its
  # pure-Python parts (functional.resample); decoding is PyAV's. torchaudio's last release (2.9) is built
  # against torch 2.9, so its compiled extension cannot load beside torch 2.14: install it without
  # dependencies and drop the extension (torchaudio then runs its Python code and reports no extension).
  "$venv/bin/python" -m pip install --quiet --no-deps torchaudio==2.9.1 >&2
  local ta_lib
  ta_lib="$("$venv/bin/python" -c 'import importlib.util, pathlib; print(pathlib.Path(importlib.util.find_spec("torchaudio").origin).parent / "lib")')"
  find "$ta_lib" -maxdepth 1 -name '*.so' -delete
  "$venv/bin/python" -c 'import torch, torchaudio.functional as F; F.resample(torch.zeros(1, 480), 48000, 44100)' >&2
  touch "$venv/.m4-ready"
}

if [ "${1:-}" = "--clean" ]; then
  # A venv as a user's ComfyUI has it: ComfyUI's requirements and this pack's requirements.txt, nothing
  # from requirements-dev.txt. The clean-install test starts the server from it and runs every node once.
  ckey="$( (echo "$VENV_REV"; cat "$here/requirements.txt" "$comfy/requirements.txt") | sha256sum | cut -c1-12)"
  clean="$cache/clean-venv-$ckey"
  if [ ! -f "$clean/.m4-ready" ]; then
    log "building the clean-install venv $clean (ComfyUI's and the pack's requirements only)"
    build_venv "$clean" "$here/requirements.txt"
    { ls -d "$cache"/clean-venv-* 2>/dev/null | grep -vxF "$clean" || true; } | while read -r old; do rm -rf "$old"; done
  fi
  echo "$clean/bin/python"
  exit 0
fi

key="$( (echo "$VENV_REV"; cat "$here/requirements.txt" "$here/requirements-dev.txt" "$comfy/requirements.txt") | sha256sum | cut -c1-12)"
venv="$cache/venv-$key"
if [ ! -f "$venv/.m4-ready" ]; then
  log "building venv $venv (torch from local disk; about 4 minutes the first time)"
  build_venv "$venv" "$here/requirements.txt" "$here/requirements-dev.txt"
  # Venvs of other requirement sets are several GB each: keep this one and the newest other (a second
  # checkout on another branch may still be using it), remove the rest.
  # (grep finds nothing when this is the only venv: its status must not end the script under pipefail)
  { ls -dt "$cache"/venv-* 2>/dev/null | grep -vxF "$venv" || true; } | tail -n +2 | while read -r old; do
    rm -rf "$old"
  done
fi

# comfy-cli (for `comfy node validate`, the Registry's own check) in a venv of its own: its many
# dependencies stay out of the test venv.
cli_venv="$cache/comfy-cli-1.23.0"
if [ ! -f "$cli_venv/.m4-ready" ]; then
  log "installing comfy-cli 1.23.0 for the Registry validation"
  rm -rf "$cli_venv"
  python3 -m venv "$cli_venv"
  "$cli_venv/bin/python" -m pip install --quiet comfy-cli==1.23.0 ruff >&2
  touch "$cli_venv/.m4-ready"
fi

if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    log "installing Debian chromium for the browser tier"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >&2
  else
    log "chromium missing and not root: install Debian's chromium package (the browser tier will fail without it)"
  fi
fi
echo "$venv/bin/python"
