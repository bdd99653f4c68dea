#!/usr/bin/env bash
# Installs everything the engine needs into ./.venv (idempotent: skipped when nothing changed).
#   - Debian's ffmpeg and GStreamer RTSP server (real stream servers for the live-stream tests), as root;
#   - torch 2.14.1 + torchvision 0.29.1 first (the only pair that imports together here, see
#     ../shared/models/README.md), then the package with every extra: pip install -e '.[all]'.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
"$PY" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || {
  echo "error: Python 3.11 is required (found $("$PY" --version 2>&1)); set PYTHON=/path/to/python3.11" >&2
  exit 2
}

# Real stream servers for the live-stream tests: ffmpeg (HTTP) and GStreamer's RTSP server (driven from
# Debian's own /usr/bin/python3); Debian's Chromium for the console's browser tests (Playwright drives it:
# it cannot download its own browser here).
DEB_PACKAGES="ffmpeg gstreamer1.0-rtsp gir1.2-gst-rtsp-server-1.0 python3-gst-1.0 gstreamer1.0-plugins-base
  gstreamer1.0-plugins-good chromium fonts-dejavu-core"
if ! command -v ffmpeg >/dev/null 2>&1 || ! [ -x /usr/bin/chromium ] \
   || ! /usr/bin/python3 tests/rtsp_server.py --check >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing stream servers (Debian packages) ..."
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      $DEB_PACKAGES >/dev/null
  else
    echo "warning: missing stream servers or Chromium, live-stream and browser tests will be skipped" \
      "(apt-get install $DEB_PACKAGES)" >&2
  fi
fi

stamp=.venv/.installed
want=$(cat pyproject.toml scripts/install.sh models/build_aspect_model.py | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -f models/cache/registry.yaml ] \
   && .venv/bin/python -c 'import analytics' 2>/dev/null; then
  exit 0
fi

echo "creating .venv and installing (a few minutes the first time) ..."
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q torch==2.14.1 torchvision==0.29.1
.venv/bin/python -m pip install -q -e '.[all]'
# The frame-aspect INT8 detector (448x576 for 4:3 cameras, used by configs/pets09.yaml) is built here,
# offline, from the shared checkpoint (about a minute): derived from AGPL weights, rebuilt rather than committed.
.venv/bin/python models/build_aspect_model.py
echo "$want" > "$stamp"
echo "installed: $(.venv/bin/python -c 'import analytics; print("analytics", analytics.__version__)')"
