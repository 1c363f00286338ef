#!/usr/bin/env python3
"""Journal throughput with fsync, and ack latency through the Sequencer (group commit).

    .venv/bin/python benchmarks/journal.py [--commands 20000] [--dir /path/on/the/disk/to/measure]

1. ``Journal.append_batch`` alone: commands/s and fsyncs/s at batch sizes 1, 16, 128, 512.
2. ``Sequencer.submit`` with ``--clients`` concurrent submitters (each waits for its ack before
   sending the next, like a gateway connection), ``max_batch`` 1, 16, 128, 512: commands/s and
   ack latency p50/p99. The engine is a no-op (``--engine module:Class`` to use a real one), so the
   numbers are the sequencing + durability cost.
3. The same with 1, 8 and 64 clients: the ack latency floor without queueing.
Prints Markdown tables.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
# This file is named like the package it measures: keep its own directory off the import path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(REPO))

from engine import AddInstrument, Command, InstrumentSpec, NewOrder, Result, ResultCode, Side  # noqa: E402
from journal import Journal, Sequencer  # noqa: E402

SPEC = InstrumentSpec(symbol="OMN1", tick_size=10_000, lot_size=10**18, band_low=1, band_high=10_000)
BATCHES = (1, 16, 128, 512)


class NullEngine:
    def process(self, cmd: Command) -> Result:
        return Result(code=ResultCode.OK, events=())

    def snapshot(self) -> dict[str, Any]:
        return {}


def order(i: int) -> NewOrder:
    # Non-crossing prices keep a real engine's book simple; sides alternate.
    side = Side.BUY if i % 2 else Side.SELL
    price = 90 + i % 10 if side is Side.BUY else 110 + i % 10
    return NewOrder(
        ts=0,
        participant=f"p{i % 50}",
        symbol="OMN1",
        side=side,
        qty=1 + i % 7,
        price=price,
        client_order_id=f"bench-{i}",
    )


def bench_append(root: Path, commands: int, batch: int) -> dict[str, float]:
    directory = Path(tempfile.mkdtemp(dir=root))
    try:
        with Journal.open(directory) as journal:
            cmds = [order(i) for i in range(commands)]
            seq = 0
            started = time.perf_counter()
            for start in range(0, commands, batch):
                chunk = cmds[start : start + batch]
                journal.append_batch([(seq + 1 + k, c) for k, c in enumerate(chunk)])
                seq += len(chunk)
            elapsed = time.perf_counter() - started
        return {"cmds_per_s": commands / elapsed, "fsyncs_per_s": (commands / batch) / elapsed}
    finally:
        shutil.rmtree(directory)


async def bench_sequencer(root: Path, commands: int, max_batch: int, clients: int, engine: Any) -> dict[str, float]:
    directory = Path(tempfile.mkdtemp(dir=root))
    journal = Journal.open(directory)
    try:
        seqr = Sequencer(engine, journal, max_batch=max_batch)
        await seqr.start()
        await seqr.submit(AddInstrument(ts=0, spec=SPEC))
        latencies: list[float] = []
        per_client = commands // clients
        counter = iter(range(commands))

        async def client() -> None:
            for _ in range(per_client):
                cmd = order(next(counter))
                t0 = time.perf_counter()
                await seqr.submit(cmd)
                latencies.append(time.perf_counter() - t0)

        batches_before = seqr.batches
        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        elapsed = time.perf_counter() - started
        batches = seqr.batches - batches_before
        await seqr.stop()
        q = statistics.quantiles(latencies, n=100)
        return {
            "cmds_per_s": len(latencies) / elapsed,
            "avg_batch": len(latencies) / max(batches, 1),
            "p50_ms": q[49] * 1000,
            "p99_ms": q[98] * 1000,
        }
    finally:
        journal.close()
        shutil.rmtree(directory)


def make_engine(spec: str | None) -> Any:
    if spec is None:
        return NullEngine()
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--commands", type=int, default=20_000)
    p.add_argument("--clients", type=int, default=512, help="concurrent submitters for the sequencer runs")
    p.add_argument("--dir", type=Path, default=REPO / "var" / "bench", help="where to write (the disk measured)")
    p.add_argument("--engine", default=None, help="module:Class instead of the no-op engine")
    args = p.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)

    print(f"journal append, {args.commands} commands, fsync per batch ({args.dir})\n")
    print("| batch size | commands/s | fsyncs/s |")
    print("|---:|---:|---:|")
    for batch in BATCHES:
        n = min(args.commands, 2_000) if batch == 1 else args.commands
        r = bench_append(args.dir, n, batch)
        print(f"| {batch} | {r['cmds_per_s']:,.0f} | {r['fsyncs_per_s']:,.0f} |")

    engine_name = args.engine or "no-op engine"
    print(f"\nSequencer.submit, {args.clients} concurrent clients, {engine_name}\n")
    print("| max_batch | commands/s | avg batch | ack p50 ms | ack p99 ms |")
    print("|---:|---:|---:|---:|---:|")
    for batch in BATCHES:
        n = min(args.commands, 4_000) if batch == 1 else args.commands
        r = asyncio.run(bench_sequencer(args.dir, n, batch, args.clients, make_engine(args.engine)))
        print(f"| {batch} | {r['cmds_per_s']:,.0f} | {r['avg_batch']:.1f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} |")

    print(f"\nSequencer.submit, max_batch 512, fewer clients (latency without queueing), {engine_name}\n")
    print("| clients | commands/s | avg batch | ack p50 ms | ack p99 ms |")
    print("|---:|---:|---:|---:|---:|")
    for clients in (1, 8, 64):
        n = min(args.commands, 400 * clients)
        r = asyncio.run(bench_sequencer(args.dir, n, 512, clients, make_engine(args.engine)))
        print(f"| {clients} | {r['cmds_per_s']:,.0f} | {r['avg_batch']:.1f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} |")


if __name__ == "__main__":
    main()
