#!/usr/bin/env bash
# Sets everything up and runs the venue with a live demo market (embedded: SQLite + in-process EVM).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/venue demo "$@"
