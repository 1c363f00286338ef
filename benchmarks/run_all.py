"""Every benchmark with one command, one combined table.

    .venv/bin/python benchmarks/run_all.py            # engine, gateway, settlement, journal (a few minutes)
    .venv/bin/python benchmarks/run_all.py --load     # + the locust load test (several more minutes)
    .venv/bin/python benchmarks/run_all.py --only engine,gateway --out var/bench/all.json

Each benchmark runs as its own process (``benchmarks/<name>.py`` with sizes small enough for a
shared 2-core machine; ``--full`` uses each script's own defaults) and prints markdown tables;
this script collects every table row into one table ``| benchmark | measurement | result |``.
A benchmark that fails or times out gets a FAILED row and the exit code is 1.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True, slots=True, kw_only=True)
class Bench:
    name: str
    argv: tuple[str, ...]  # after the python executable
    quick_args: tuple[str, ...] = ()  # smaller sizes (the default)
    key_columns: int = 1  # leading table columns that name a row; the rest are results
    timeout_s: float = 900.0
    output: str = "markdown"  # "markdown" tables, or "engine" (benchmarks/engine.py's aligned text)
    env: dict[str, str] = field(default_factory=dict)


BENCHES: dict[str, Bench] = {
    # the engine engineer's benchmark; --compare runs the same streams through pyorderbook (PyPI)
    "engine": Bench(name="engine", argv=("benchmarks/engine.py", "--compare"), quick_args=("--ops", "50000"),
                    output="engine"),
    "gateway": Bench(name="gateway", argv=("benchmarks/gateway.py",), quick_args=("--orders", "2000"),
                     key_columns=3),
    "settlement": Bench(name="settlement", argv=("benchmarks/settlement.py",),
                        quick_args=("--trades", "300", "--skip-in-process"), key_columns=1),
    "attestation": Bench(name="attestation", argv=("benchmarks/attestation.py",),
                         quick_args=("--attestations", "20"), key_columns=1),
    "journal": Bench(name="journal", argv=("benchmarks/journal.py",),
                     quick_args=("--commands", "5000", "--engine", "engine:Engine"), key_columns=1),
    "load": Bench(name="load", argv=("-m", "loadtests.run"),
                  quick_args=("--investors", "4,16", "--makers", "1,4", "--subscribers", "4", "--duration", "15",
                              "--chain", "anvil"),
                  key_columns=3, timeout_s=1800.0),
}
DEFAULT = ("engine", "gateway", "settlement", "journal", "attestation")


@dataclass(slots=True)
class Outcome:
    name: str
    ok: bool
    seconds: float
    rows: list[tuple[str, str]]  # (measurement, result)
    stdout: str
    error: str | None = None


def parse_tables(text: str, key_columns: int) -> list[tuple[str, str]]:
    """Every row of every markdown table in ``text`` as (measurement, result)."""
    rows: list[tuple[str, str]] = []
    header: list[str] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not (line.startswith("|") and line.endswith("|")):
            header = None
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        if header is None:
            header = cells
            continue
        if all(set(c) <= set(":- ") for c in cells):
            continue  # the |---| separator
        keys = max(1, min(key_columns, len(cells) - 1))
        if keys == 1:
            generic = header[0].lower() in ("measurement", "name", "")
            name = cells[0] if generic else f"{header[0]} {cells[0]}"
        else:
            name = ", ".join(f"{h} {c}" for h, c in zip(header[:keys], cells[:keys], strict=False))
        values = cells[keys:]
        if len(values) == 1 and header[keys:] in (["value"], ["result"]):
            result = values[0]
        else:
            result = ", ".join(f"{h}: {v}" for h, v in zip(header[keys:], values, strict=False))
        rows.append((name, result))
    return rows


_ENGINE_STREAM = re.compile(r"== (?P<stream>[\w-]+): (?P<ops>[\d,]+) ops, (?P<rate>[\d,]+) ops/s overall")
_ENGINE_LATENCY = re.compile(r"== latency, (?P<impl>\w+) engine, (?P<stream>[\w-]+)")


def parse_engine(text: str) -> list[tuple[str, str]]:
    """``benchmarks/engine.py``: per stream the overall rate and one row per operation class, then
    the pyorderbook comparison lines."""
    rows: list[tuple[str, str]] = []
    stream = ""
    header: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        words = line.split()
        overall = _ENGINE_STREAM.match(line)
        latency = _ENGINE_LATENCY.match(line)
        if latency:
            stream = f"{latency['stream']} ({latency['impl']})"
        elif line.startswith("== ") and not overall:
            stream = ""
        if overall:
            stream = overall["stream"]
            rows.append((f"{stream} stream, all operations", f"{overall['rate']} ops/s ({overall['ops']} ops)"))
        elif words[:1] == ["class"]:
            header = line.replace(" us", "_us").split()
        elif stream and header and len(words) == len(header) and not line.startswith("=="):
            named = dict(zip(header, words, strict=True))
            rows.append((f"{stream} stream, {words[0]}",
                         f"{named.get('ops/s')} ops/s, p50 {named.get('p50_us')} us, p99 {named.get('p99_us')} us"))
        elif "pyorderbook" in words and "ratio" in words:
            i = words.index
            rows.append((f"{words[0]} stream vs pyorderbook (same orders)",
                         f"engine {words[i('engine') + 1]} ops/s, pyorderbook {words[i('pyorderbook') + 1]} ops/s, "
                         f"ratio {words[i('ratio') + 1]}"))
        elif line.startswith("pyorderbook not installed"):
            rows.append(("comparison with pyorderbook", "NOT RUN: " + line))
        elif not line:
            header = []
    return rows


def run_bench(bench: Bench, *, full: bool) -> Outcome:
    cmd = [sys.executable, *bench.argv, *(() if full else bench.quick_args)]
    started = time.monotonic()
    try:
        done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=bench.timeout_s,
                              env={**os.environ, "PYTHONPATH": str(REPO), **bench.env})
    except subprocess.TimeoutExpired:
        seconds = time.monotonic() - started
        return Outcome(bench.name, False, seconds, [], "", f"timed out after {bench.timeout_s:.0f} s")
    seconds = time.monotonic() - started
    rows = parse_engine(done.stdout) if bench.output == "engine" else parse_tables(done.stdout, bench.key_columns)
    # the load test's verdict line (its exit code is 1 when the check failed)
    rows += [("consistency check", line.split(":", 1)[1].strip())
             for line in done.stdout.splitlines() if line.startswith("consistency:")]
    if any(result.startswith("NOT RUN") for _, result in rows):
        return Outcome(bench.name, False, seconds, rows, done.stdout, "a comparison did not run (see its row)")
    if done.returncode != 0 or not rows:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return Outcome(bench.name, False, seconds, rows, done.stdout, f"exit code {done.returncode}: {tail}")
    return Outcome(bench.name, True, seconds, rows, done.stdout)


def combined_table(outcomes: list[Outcome]) -> str:
    lines = ["| benchmark | measurement | result |", "|---|---|---|"]
    for o in outcomes:
        for name, result in o.rows:
            lines.append(f"| {o.name} | {name} | {result} |")
        if not o.ok:
            lines.append(f"| {o.name} | FAILED | {o.error} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help=f"comma-separated subset of {', '.join(BENCHES)}")
    parser.add_argument("--load", action="store_true", help="also run the locust load test")
    parser.add_argument("--full", action="store_true", help="each benchmark's own default sizes (slower)")
    parser.add_argument("--out", type=Path, help="write every benchmark's rows and raw output as JSON")
    args = parser.parse_args(argv)
    names = args.only.split(",") if args.only else [*DEFAULT, *(["load"] if args.load else [])]
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(BENCHES)}")
    outcomes: list[Outcome] = []
    for name in names:
        print(f"running {name} ...", file=sys.stderr, flush=True)
        outcome = run_bench(BENCHES[name], full=args.full)
        print(f"  {name}: {'ok' if outcome.ok else 'FAILED'} in {outcome.seconds:.0f} s", file=sys.stderr, flush=True)
        outcomes.append(outcome)
    print(f"benchmarks on {os.cpu_count()} cores ({'full' if args.full else 'quick'} sizes)\n")
    print(combined_table(outcomes))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps([
            {"name": o.name, "ok": o.ok, "seconds": round(o.seconds, 1), "rows": o.rows, "error": o.error,
             "stdout": o.stdout} for o in outcomes], indent=1))
    return 0 if all(o.ok for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
