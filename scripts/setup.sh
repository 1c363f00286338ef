#!/usr/bin/env bash
# Idempotent setup on a fresh machine: Python venv + package, npm toolchain (solc, anvil, T-REX
# and EAS artifacts), and Debian chromium for the console's browser tests (only with --browser).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
# the stamp covers the compiled engine core too: a changed .pyx is rebuilt by the editable install
stamp=.venv/.installed-$(cat pyproject.toml setup.py engine/_core.pyx | sha1sum | cut -c1-12)
if [ ! -f "$stamp" ]; then
    .venv/bin/pip install -q --upgrade pip
    .venv/bin/pip install -q -e ".[dev]"
    touch "$stamp"
fi

if [ ! -x node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil ] || [ ! -d node_modules/solc ] \
    || [ ! -d node_modules/@tokenysolutions/t-rex ] || [ ! -d node_modules/@ethereum-attestation-service/eas-contracts ]; then
    if [ -f package-lock.json ]; then npm ci --no-audit --no-fund --silent; else npm install --no-audit --no-fund --silent; fi
fi

if [ "${1:-}" = "--browser" ] && [ ! -x /usr/bin/chromium ]; then
    if [ "$(id -u)" = 0 ]; then
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null
    else
        echo "setup: /usr/bin/chromium missing; install Debian's chromium (browser tests will be skipped)" >&2
    fi
fi
