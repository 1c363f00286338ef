#!/usr/bin/env python3
"""Order entry through a ``venue gateway`` process against the leader's own API, same run.

Starts one NATS server (R1) and anvil on free loopback ports, a leader (``venue run --role auto``
on the JetStream journal) and one gateway process, then sends the same signed REST order flow
(``--clients`` concurrent clients, each waiting for its ack before the next order) first to the
leader's own port (the reference: the single-process venue on the same journal), then through the
gateway (REST -> gateway -> NATS request -> leader -> reply). Prints a Markdown table: orders/s and
ack latency p50/p99.

    .venv/bin/python benchmarks/gateway_process.py [--orders 400] [--clients 8]
"""

from __future__ import annotations

import argparse
import asyncio
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


async def flow(url: str, keys: dict[str, dict[str, str]], n: int, clients: int, seed: int,
               tag: str) -> tuple[float, list[float], int]:
    """(orders/s, ack latencies in ms, refusals) of ``n`` orders from ``clients`` clients."""
    latencies: list[float] = []
    refused = 0
    per = n // clients

    async def one(i: int) -> None:
        nonlocal refused
        participant = cv.PARTICIPANTS[i % len(cv.PARTICIPANTS)]
        rng = random.Random(seed * 1000 + i)
        async with VenueClient(url, keys[participant]["key_id"], keys[participant]["private_key"],
                               timeout=60.0) as client:
            for k in range(per):
                side = rng.choice(("buy", "sell"))
                price = Decimal(45_000) + Decimal(rng.randint(-20, 20)) / 10
                t0 = time.perf_counter()
                try:
                    await client.place(cv.SYMBOL, side, rng.randint(1, 3), price, client_order_id=f"{tag}-{i}-{k}")
                except ApiError:
                    refused += 1
                    continue
                latencies.append((time.perf_counter() - t0) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(clients)))
    return len(latencies) / (time.perf_counter() - started), latencies, refused


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
        gw_port = free_port()
        gateway = _start(["gateway", "--journal-url", url, "--data-dir", str(work / "gw"), "--port", str(gw_port)],
                         work / "gw.log", {})
        procs.append(gateway)
        gw_url = f"http://127.0.0.1:{gw_port}"
        await _healthy(gw_url, gateway)
        await flow(leader_url, keys, args.clients * 5, args.clients, 0, "warm-l")  # warm both paths up
        await flow(gw_url, keys, args.clients * 5, args.clients, 0, "warm-g")
        rows = []
        for name, target, tag in (("leader's own API (reference)", leader_url, "l"), ("through 1 gateway process",
                                                                                     gw_url, "g")):
            rate, lat, refused = await flow(target, keys, args.orders, args.clients, args.seed, tag)
            rows.append(f"| {name} | {rate:.0f} | {pct(lat, 50):.1f} | {pct(lat, 99):.1f} | {refused} |")
        print(f"{args.orders} orders, {args.clients} clients (REST, each waits for its ack), NATS R1, same run")
        print("| path | orders/s | ack p50 ms | ack p99 ms | refused |\n|---|---|---|---|---|")
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
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    raise SystemExit(main())
