"""The benchmark runner's table collection (the benchmarks themselves are run by hand)."""

from __future__ import annotations

import sys

from benchmarks.run_all import Bench, Outcome, combined_table, parse_engine, parse_tables, run_bench

GATEWAY_OUT = """gateway websocket order entry, 2 cores, 4000 orders per row

| venue | connections | in flight per conn | orders/s | ack p50 ms | p90 ms | p99 ms |
|---|---|---|---|---|---|---|
| fake | 1 | 1 | 367 | 0.96 | 6.34 | 11.96 |
| core | 4 | 32 | 1496 | 58.01 | 114.88 | 206.00 |
"""

SETTLEMENT_OUT = """| measurement | value |
|---|---|
| gas/trade, demo OMN, batch 1 | 166,634 |

| journal batch | commands/s | fsyncs/s |
|---:|---:|---:|
| 16 | 29,539 | 1,846 |
"""


def test_rows_of_a_multi_key_table() -> None:
    assert parse_tables(GATEWAY_OUT, 3) == [
        ("venue fake, connections 1, in flight per conn 1",
         "orders/s: 367, ack p50 ms: 0.96, p90 ms: 6.34, p99 ms: 11.96"),
        ("venue core, connections 4, in flight per conn 32",
         "orders/s: 1496, ack p50 ms: 58.01, p90 ms: 114.88, p99 ms: 206.00"),
    ]


def test_value_tables_and_several_tables() -> None:
    assert parse_tables(SETTLEMENT_OUT, 1) == [
        ("gas/trade, demo OMN, batch 1", "166,634"),
        ("journal batch 16", "commands/s: 29,539, fsyncs/s: 1,846"),
    ]


def test_no_table_no_rows() -> None:
    assert parse_tables("just text\n| not a row", 1) == []


def test_failed_benchmark_gets_a_failed_row() -> None:
    crash = Bench(name="crash", argv=("-c", "import sys; print('| a | b |'); sys.exit('boom')"))
    outcome = run_bench(crash, full=False)
    assert not outcome.ok and outcome.error == "exit code 1: boom"
    assert combined_table([outcome]).splitlines()[-1] == "| crash | FAILED | exit code 1: boom |"


def test_benchmark_rows_in_the_combined_table() -> None:
    ok = Bench(name="demo", argv=("-c", "print('| measurement | value |\\n|---|---|\\n| x | 1 |')"))
    outcome = run_bench(ok, full=False)
    assert outcome.ok and sys.executable
    assert combined_table([outcome, Outcome("other", True, 0.0, [("y", "2")], "")]).splitlines()[2:] == [
        "| demo | x | 1 |", "| other | y | 2 |"]


ENGINE_OUT = """python 3.11.7; generating streams (50,000 ops each) ...

== insert: 50,000 ops, 72,256 ops/s overall (uninstrumented loop)
class           count     ops/s    p50 us    p90 us    p99 us  p99.9 us    max us
new            50,000    81,340       4.9       6.0      12.6      40.1       300

== mixed: 50,000 ops, 70,768 ops/s overall (uninstrumented loop)
class           count     ops/s    p50 us    p90 us    p99 us  p99.9 us    max us
cancel          9,950    62,274       7.0       9.0      16.9      50.0       210

== comparison with pyorderbook (same streams, ops/s overall)
insert   engine     72,256  pyorderbook    111,964  ratio 0.65x
mixed    engine     70,768  pyorderbook     78,381  ratio 0.90x
"""


def test_engine_output_rows() -> None:
    assert parse_engine(ENGINE_OUT) == [
        ("insert stream, all operations", "72,256 ops/s (50,000 ops)"),
        ("insert stream, new", "81,340 ops/s, p50 4.9 us, p99 12.6 us"),
        ("mixed stream, all operations", "70,768 ops/s (50,000 ops)"),
        ("mixed stream, cancel", "62,274 ops/s, p50 7.0 us, p99 16.9 us"),
        ("insert stream vs pyorderbook (same orders)", "engine 72,256 ops/s, pyorderbook 111,964 ops/s, ratio 0.65x"),
        ("mixed stream vs pyorderbook (same orders)", "engine 70,768 ops/s, pyorderbook 78,381 ops/s, ratio 0.90x"),
    ]


def test_missing_comparison_fails_the_engine_benchmark() -> None:
    text = "== comparison with pyorderbook\npyorderbook not installed: .venv/bin/pip install pyorderbook\n"
    bench = Bench(name="engine", argv=("-c", f"print({text!r})"), output="engine")
    outcome = run_bench(bench, full=False)
    assert not outcome.ok and outcome.rows[0][1].startswith("NOT RUN")


def test_consistency_verdict_is_a_row() -> None:
    script = "print('| a | b |\\n|---|---|\\n| x | 1 |\\n\\nconsistency: OK  trades 3, settled 3')"
    outcome = run_bench(Bench(name="load", argv=("-c", script)), full=False)
    assert outcome.rows == [("a x", "b: 1"), ("consistency check", "OK  trades 3, settled 3")]
