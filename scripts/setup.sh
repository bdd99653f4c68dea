#!/usr/bin/env bash
# Set-up in one command: install everything, then run the main job on the embedded default config
# (three cameras of real footage from ../shared/footage; outputs in runs/default/).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
exec .venv/bin/analytics run configs/default.yaml --out runs/default "$@"
