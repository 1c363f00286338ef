#!/usr/bin/env python3
"""The cost of the replicated journal: ``Sequencer`` + the real engine on the file journal (fsync,
one process: the reference) against the JetStream journal on one NATS server (R1) and on a
three-node cluster (R3), in the same run, with the same order flow.

    .venv/bin/python benchmarks/ha_journal.py [--orders 4000] [--clients 32]

``--clients`` concurrent submitters each wait for their ack before sending the next order (like
gateway connections); the sequencer batches whatever is queued (group commit). Prints a Markdown
table: orders/s and ack latency p50/p99. The NATS servers are started here on free loopback ports.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from engine import AddInstrument, Engine, InstrumentSpec, NewOrder, Side  # noqa: E402
from journal import CommandJournal, Journal, Sequencer  # noqa: E402
from journal.nats import NatsJournal  # noqa: E402
from tests.ha.cluster import NatsCluster  # noqa: E402

SPEC = InstrumentSpec(symbol="OMN1", tick_size=1, lot_size=1, band_low=1, band_high=1_000_000)


def orders(n: int, seed: int) -> list[NewOrder]:
    rng = random.Random(seed)
    return [NewOrder(ts=0, participant=f"p{i % 16}", symbol="OMN1", side=Side.BUY if rng.random() < 0.5 else Side.SELL,
                     qty=rng.randint(1, 5), price=1000 + rng.randint(-20, 20), client_order_id=f"o{i}")
            for i in range(n)]


async def measure(journal: CommandJournal, flow: list[NewOrder], clients: int) -> tuple[float, float, float]:
    seq = Sequencer(Engine(), journal)
    await seq.start()
    await seq.submit(AddInstrument(ts=0, spec=SPEC))
    latencies: list[float] = []
    it = iter(flow)

    async def client() -> None:
        for cmd in it:
            t0 = time.perf_counter()
            await seq.submit(cmd)
            latencies.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    elapsed = time.perf_counter() - t0
    await seq.stop()
    qs = statistics.quantiles(latencies, n=100)
    return len(flow) / elapsed, qs[49] * 1000, qs[98] * 1000


async def main_async(args: argparse.Namespace) -> None:
    flow = orders(args.orders, args.seed)
    work = Path(tempfile.mkdtemp(prefix="ha-bench-"))
    single = NatsCluster(work / "r1", size=1).start()
    cluster = NatsCluster(work / "r3", size=3).start()
    backends: list[tuple[str, Callable[[], CommandJournal]]] = [
        ("file journal, fsync (single process, reference)", lambda: Journal.open(work / "file")),
        ("JetStream R1 (one server)", lambda: NatsJournal.open(single.url("BENCH"), work / "s1")),
        ("JetStream R3 (three-node cluster)", lambda: NatsJournal.open(cluster.url("BENCH"), work / "s3", replicas=3)),
    ]
    rows = []
    try:
        for name, make in backends:
            journal = await asyncio.to_thread(make)
            try:
                rows.append((name, *await measure(journal, flow, args.clients)))
            finally:
                journal.close()
    finally:
        single.stop()
        cluster.stop()
    print(f"{args.orders} orders, {args.clients} concurrent clients, real engine, same run\n")
    print("| journal | orders/s | ack p50 ms | ack p99 ms |")
    print("|---|---:|---:|---:|")
    for name, rate, p50, p99 in rows:
        print(f"| {name} | {rate:,.0f} | {p50:.2f} | {p99:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=4000)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seed", type=int, default=1)
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
