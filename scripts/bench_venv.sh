#!/usr/bin/env bash
# Creates .venv-bench: the project (with its compiled engine core) plus the order-book peers that
# benchmarks/engine.py --compare measures. Each peer is installed on its own, so one that does not
# install on this machine is reported and skipped instead of failing the rest.
#     scripts/bench_venv.sh && .venv-bench/bin/python benchmarks/engine.py --compare --profile --markdown
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if [ ! -x .venv-bench/bin/python ]; then
    "$PY" -m venv .venv-bench
fi
.venv-bench/bin/pip install -q --upgrade pip
.venv-bench/bin/pip install -q -e .
for peer in pyorderbook cython-orderbook lightmatchingengine limit-order-book; do
    if .venv-bench/bin/pip install -q "$peer"; then
        echo "bench_venv: $peer installed"
    else
        echo "bench_venv: $peer could not be installed here; benchmarks/engine.py will say so" >&2
    fi
done
