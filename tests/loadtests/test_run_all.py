"""The benchmark runner's table collection (the benchmarks themselves are run by hand)."""

from __future__ import annotations

import sys

from benchmarks.run_all import Bench, Outcome, combined_table, parse_tables, run_bench

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
