#!/usr/bin/env bash
# Idempotent setup on a fresh machine: Python venv + package, npm toolchain (solc, anvil, T-REX
# and EAS artifacts), and Debian chromium for the console's browser tests (only with --browser).
#
#   bash scripts/setup.sh              venv + package with the dev tools + npm toolchain
#   bash scripts/setup.sh --browser    the same + Debian's chromium (as root)
#   bash scripts/setup.sh --runtime    venv + package with the embedded chain only (what the demo needs)
#
# Each step says what it does on stderr; pip and npm output goes to .venv/setup.log.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=dev
browser=0
for arg in "$@"; do
    case "$arg" in
        --browser) browser=1 ;;
        --runtime) mode=runtime ;;
        *) echo "setup: unknown option $arg (use --browser or --runtime)" >&2; exit 2 ;;
    esac
done
step() { printf 'setup: %s\n' "$*" >&2; }

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    step "creating the Python virtual environment .venv ($("$PY" --version 2>&1))"
    "$PY" -m venv .venv
else
    step "Python virtual environment .venv exists"
fi
log=.venv/setup.log
if [ "$mode" = dev ]; then extras="[dev]"; else extras="[embedded]"; fi
# the stamp covers the compiled engine core too: a changed .pyx is rebuilt by the editable install
hash=$(cat pyproject.toml setup.py engine/_core.pyx | sha1sum | cut -c1-12)
stamp=.venv/.installed-$mode-$hash
if [ -f ".venv/.installed-dev-$hash" ]; then stamp=.venv/.installed-dev-$hash; fi  # dev includes embedded
if [ ! -f "$stamp" ]; then
    step "installing the venue package and its Python dependencies ($extras, editable; a few minutes the first time; log: $log)"
    if ! { .venv/bin/pip install -q --upgrade pip && .venv/bin/pip install -q -e ".$extras"; } >"$log" 2>&1; then
        tail -n 30 "$log" >&2
        step "pip install failed (full log: $log)"
        exit 1
    fi
    touch "$stamp"
else
    step "Python packages up to date ($extras)"
fi

if [ "$mode" = dev ]; then
    if [ ! -x node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil ] || [ ! -d node_modules/solc ] \
        || [ ! -d node_modules/@tokenysolutions/t-rex ] || [ ! -d node_modules/@ethereum-attestation-service/eas-contracts ]; then
        if ! command -v npm >/dev/null; then
            step "npm not found: install Node.js 18+ (anvil, solc and the reference T-REX/EAS artifacts come from npm)"
            exit 1
        fi
        step "installing the npm toolchain (solc, anvil, T-REX and EAS artifacts) into node_modules"
        if [ -f package-lock.json ]; then npm ci --no-audit --no-fund --silent; else npm install --no-audit --no-fund --silent; fi
    else
        step "npm toolchain present (node_modules: solc, anvil, T-REX, EAS)"
    fi
fi

if [ "$browser" = 1 ]; then
    if [ -x /usr/bin/chromium ]; then
        step "browser present (/usr/bin/chromium)"
    elif [ "$(id -u)" = 0 ]; then
        step "installing Debian's chromium for the console's browser tests (apt-get)"
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null
    else
        step "/usr/bin/chromium missing and not root: install Debian's chromium (browser tests will be skipped)"
    fi
fi
step "done"
