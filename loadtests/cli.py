"""The one ``main`` of the load-test runners (``loadtests.run``, ``loadtests.openloop``): parse the
arguments, run, print the runner's summary, write the results as JSON (``--out``), exit 1 when the
run failed or its consistency check did."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from loadtests import LoadTestError

Results = dict[str, Any]
# the lines to print and whether the run passed (its consistency check)
Summary = Callable[[Results, argparse.Namespace], tuple[list[str], bool]]


def no_nan(value: Any) -> Any:
    """NaN (a statistic without samples) as JSON null."""
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, dict):
        return {k: no_nan(v) for k, v in value.items()}
    if isinstance(value, list):
        return [no_nan(v) for v in value]
    return value


def main(parser: argparse.ArgumentParser, run: Callable[[argparse.Namespace], Results], summary: Summary,
         argv: list[str] | None = None) -> int:
    args = parser.parse_args(argv)
    try:
        results = run(args)
    except LoadTestError as exc:
        print(f"load test failed: {exc}", file=sys.stderr)
        return 1
    lines, ok = summary(results, args)
    print("\n".join(lines))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(no_nan(results), indent=1, allow_nan=False))
    return 0 if ok else 1
