#!/usr/bin/env bash
# Sets everything up, then runs lint, type checks and the whole test suite
# (SQLite + PostgreSQL, in-process EVM + anvil, headless Chromium).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --browser
export PATH="$PWD/.venv/bin:$PATH"
ruff check .
mypy
pytest "$@"
