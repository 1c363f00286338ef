#!/usr/bin/env python3
"""Order entry through 1 and 2 ``venue gateway`` processes against the leader's own API, same run.

Starts one NATS server (R1) and anvil on free loopback ports, a leader (``venue run --role auto``
on the JetStream journal: the engine in its own process) and two gateway processes, then sends the
same order flow (``--clients`` concurrent clients) to: the leader's own port (the reference: the
single-process venue on the same journal), one gateway, and two gateways (clients split between
them); each over REST (signed requests, each client waits for its ack), websocket order entry
(each client waits for its ack) and pipelined websocket order entry (``--window`` orders in flight
per client: the gateway sends what one read brings as one batch). Prints a Markdown table:
orders/s, ack latency p50/p99 and the CPU time of the venue's processes (leader + gateways in use)
per acknowledged order, from /proc.

    .venv/bin/python benchmarks/gateway_process.py [--orders 400] [--clients 8] [--window 8]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

import crash_venue as cv  # noqa: E402

from settlement.chain import start_anvil  # noqa: E402
from tests.ha.cluster import NatsCluster, free_port  # noqa: E402
from tests.ha.test_gateway_process import _healthy, _start  # noqa: E402
from venue.config import VenueConfig  # noqa: E402
from venueclient import ApiError, VenueClient  # noqa: E402

TRANSPORTS = ("REST", "websocket", "websocket pipelined")


async def flow(urls: list[str], keys: dict[str, dict[str, str]], n: int, clients: int, seed: int,
               tag: str, transport: str = "REST", window: int = 8) -> tuple[float, list[float], int]:
    """(orders/s, ack latencies in ms, refusals) of ``n`` orders from ``clients`` clients, client
    ``i`` on ``urls[i % len(urls)]``."""
    latencies: list[float] = []
    refused = 0
    per = n // clients

    async def one(i: int) -> None:
        nonlocal refused
        participant = cv.PARTICIPANTS[i % len(cv.PARTICIPANTS)]
        rng = random.Random(seed * 1000 + i)
        orders = [(rng.choice(("buy", "sell")), rng.randint(1, 3), Decimal(45_000) + Decimal(rng.randint(-20, 20)) / 10)
                  for _ in range(per)]
        async with VenueClient(urls[i % len(urls)], keys[participant]["key_id"], keys[participant]["private_key"],
                               timeout=60.0) as client:
            stream = None if transport == "REST" else await client.connect()
            entry = client if stream is None else stream
            lanes = window if transport == "websocket pipelined" else 1

            async def lane(j: int) -> None:
                nonlocal refused
                for k in range(j, per, lanes):
                    side, qty, price = orders[k]
                    t0 = time.perf_counter()
                    try:
                        await entry.place(cv.SYMBOL, side, qty, price, client_order_id=f"{tag}-{i}-{k}")
                    except ApiError:
                        refused += 1
                        continue
                    latencies.append((time.perf_counter() - t0) * 1000)

            try:
                await asyncio.gather(*(lane(j) for j in range(lanes)))
            finally:
                if stream is not None:
                    await stream.close()

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(clients)))
    return len(latencies) / (time.perf_counter() - started), latencies, refused


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes so far (Linux /proc)."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / os.sysconf("SC_CLK_TCK")


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else float("nan")


async def main_async(args: argparse.Namespace) -> int:
    work = Path(tempfile.mkdtemp(prefix="gw-bench-"))
    cluster = NatsCluster(work / "nats", size=1).start()
    chain = start_anvil(block_time=cv.BLOCK_TIME)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        rpc = str(chain.w3.provider.endpoint_uri)  # type: ignore[attr-defined]
        env = {"VENUE_SETTLER_KEY": "0x" + chain.private_key(chain.accounts[1]).hex(),
               "VENUE_FINALITY": str(cv.FINALITY), "VENUE_JOURNAL_REPLICAS": "1", "VENUE_LEASE_TTL_S": "2"}
        config = VenueConfig(data_dir=work / "a", chain=rpc, port=free_port())
        keys = cv.setup(chain, config)
        url = cluster.url("OMNBENCH")
        leader = _start(["run", "--role", "auto", "--journal-url", url, "--data-dir", str(config.data_dir), "--chain",
                         rpc, "--port", str(config.port)], work / "a.log", env)
        procs.append(leader)
        leader_url = f"http://127.0.0.1:{config.port}"
        await _healthy(leader_url, leader)
        gw_urls: list[str] = []
        gw_pids: list[int] = []
        for n in (1, 2):
            gw_port = free_port()
            gateway = _start(["gateway", "--journal-url", url, "--data-dir", str(work / f"gw{n}"),
                              "--port", str(gw_port)], work / f"gw{n}.log", {})
            procs.append(gateway)
            gw_urls.append(f"http://127.0.0.1:{gw_port}")
            gw_pids.append(gateway.pid)
            await _healthy(gw_urls[-1], gateway)
        paths = [("leader's own API (reference)", [leader_url], [leader.pid]),
                 ("through 1 gateway process", gw_urls[:1], [leader.pid, gw_pids[0]]),
                 ("through 2 gateway processes", gw_urls, [leader.pid, *gw_pids])]
        for name, targets, _ in paths:  # warm every path up
            await flow(targets, keys, args.clients * 5, args.clients, 0, f"warm-{len(targets)}-{name[:3]}")
        rows = []
        for t, transport in enumerate(TRANSPORTS):
            for p, (name, targets, pids) in enumerate(paths):
                cpu = cpu_seconds(pids)
                rate, lat, refused = await flow(targets, keys, args.orders, args.clients, args.seed, f"{t}{p}",
                                                transport, args.window)
                per_order = (cpu_seconds(pids) - cpu) / max(1, len(lat)) * 1e6
                rows.append(f"| {transport} | {name} | {rate:.0f} | {pct(lat, 50):.1f} | {pct(lat, 99):.1f} | "
                            f"{per_order:.0f} | {refused} |")
        print(f"{args.orders} orders per row, {args.clients} clients (REST and websocket: each waits for its ack; "
              f"pipelined: {args.window} in flight per client), NATS R1, same run; "
              f"load average {os.getloadavg()[0]:.1f}")
        print("| entry | path | orders/s | ack p50 ms | ack p99 ms | venue CPU us/order | refused |\n"
              "|---|---|---:|---:|---:|---:|---:|")
        print("\n".join(rows))
        return 0
    finally:
        for proc in procs:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        chain.close()
        cluster.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=400)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--window", type=int, default=8, help="orders in flight per pipelined websocket client")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    raise SystemExit(main())
