#!/usr/bin/env bash
# Sets up the venue package (runtime + the embedded chain's in-process EVM; no dev tools, no npm)
# and runs the venue with a live demo market (embedded: SQLite + in-process EVM).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --runtime
exec .venv/bin/venue demo "$@"
