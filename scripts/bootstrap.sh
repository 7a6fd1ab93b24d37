#!/usr/bin/env bash
# Prepare this machine for garbagewatch, from a clean clone on Debian 12:
#   - the Debian packages it needs (only those missing; a prepared machine does no apt work):
#     mosquitto (the demo's and the tests' broker: we start our own on a free port, never the
#     system service), GStreamer with its RTSP server and Python bindings (the cameras), python3-venv,
#     chromium and fonts-noto-cjk (the console's browser tests);
#   - .venv with the project installed editable with its edge, central and dev extras
#     (skipped while pyproject.toml is unchanged since the last install).
# Safe to run again and again. PYTHON=/path/to/python3.X picks the interpreter for a new .venv.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

APT_PACKAGES=(
  mosquitto
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  python3-gi gir1.2-gst-rtsp-server-1.0
  python3-venv  # Debian's python3 cannot create a virtualenv (no ensurepip) without it
  # The console's browser tests: Playwright drives Debian's Chromium (it plays H.264 through its
  # ffmpeg; Playwright's own browser download is never used), with CJK fonts for the Chinese pages.
  chromium fonts-noto-cjk
)
VENV=.venv
STAMP="$VENV/.garbagewatch-pyproject.sha256"

say() { echo "bootstrap: $*" >&2; }

install_debian_packages() {
  if ! command -v dpkg-query >/dev/null 2>&1; then
    say "not a Debian system: make sure these are installed: ${APT_PACKAGES[*]}"
    return 0
  fi
  local missing=() pkg
  for pkg in "${APT_PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
      missing+=("$pkg")
    fi
  done
  ((${#missing[@]} == 0)) && return 0
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { say "need root (or sudo) to install: ${missing[*]}"; exit 1; }
    sudo=(sudo)
  fi
  say "installing Debian packages: ${missing[*]}"
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

python_ok() {  # $1 runs and is Python >= 3.11
  "$1" -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1
}

make_venv() {
  if [ -x "$VENV/bin/python" ] && python_ok "$VENV/bin/python"; then
    return 0
  fi
  local python="${PYTHON:-python3}"
  if ! python_ok "$python"; then
    say "$python is missing or older than 3.11; set PYTHON=/path/to/python3.11 (or newer)"
    exit 1
  fi
  rm -rf "$VENV"  # a broken or too old one
  say "creating $VENV with $("$python" -c 'import sys; print(sys.executable, sys.version.split()[0])')"
  "$python" -m venv "$VENV"
}

install_project() {
  local want
  want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
  if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && "$VENV/bin/python" -c 'import garbagewatch' 2>/dev/null; then
    return 0
  fi
  say "installing garbagewatch[edge,central,dev] into $VENV (the first time takes a few minutes)"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e '.[edge,central,dev]'
  echo "$want" >"$STAMP"
}

install_debian_packages
make_venv
install_project
