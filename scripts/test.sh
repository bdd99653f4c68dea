#!/usr/bin/env bash
# Runs the whole test suite (unit, integration on ../shared footage, live stream); installs first if needed.
# Extra arguments go to pytest, e.g. scripts/test.sh -m "not slow" or scripts/test.sh tests/unit.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
exec .venv/bin/python -m pytest "$@"
