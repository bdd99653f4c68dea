#!/usr/bin/env bash
# Set-up in one command: install everything, then run the main job on the embedded default config
# (four cameras of real footage from ../shared/footage; outputs in runs/default/). Extra arguments go to
# `analytics run`: `scripts/setup.sh --serve` also serves the operator console (http://127.0.0.1:8080/).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
exec .venv/bin/analytics run configs/default.yaml --out runs/default "$@"
