#!/usr/bin/env python3
"""One client at its rate limit must not hurt another: the victim's ack latency alone and next to
a noisy neighbour, measured in the same run.

    .venv/bin/python benchmarks/noisy_neighbour.py [--orders 400] [--noisy-rate 0 (= the key limit)]

The server (a subprocess, own interpreter) runs the gateway with its default limits over
``venue.core.VenueCore`` + ``journal.Sequencer`` on a real journal in a temp directory (the
``core`` venue of ``benchmarks/gateway.py``). Rows:

* ``alone``: the victim sends ``--orders`` orders one at a time (send, wait for the ack, next),
  at most ``--victim-rate`` a second (inside its own limit);
* ``noisy, fair``: the same while another key pipelines orders at its rate limit (``rate_per_s``
  of ``GatewayConfig``) with up to 64 in flight; the gateway admits websocket commands into the
  venue round-robin per session (``gateway.fair``, default ``venue_in_flight``);
* ``noisy, fifo``: the same with the fair scheduler effectively off (``venue_in_flight`` huge),
  i.e. the venue's first-come-first-served queue, for reference.

The goal (issue 13): the victim's p99 next to a neighbour at its limit within 1.5x of alone.
Prints a Markdown table; the JSON rows go to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(REPO))

from benchmarks.gateway import _free_port, _keys, _private_key  # noqa: E402

VICTIM, NOISY = "bench0", "bench1"


async def _serve(port: int, fair: bool) -> None:
    import uvicorn

    from engine import AddInstrument, Engine
    from gateway import GatewayConfig, create_app
    from gateway.server import uvicorn_options
    from journal import Journal, Sequencer
    from tests.gateway.fakes import make_listing
    from venue.core import VenueCore

    listing = make_listing("OMN-A", max_qty=10**9)
    config = GatewayConfig() if fair else GatewayConfig(venue_in_flight=10**9)
    with tempfile.TemporaryDirectory(prefix="bench-journal-") as tmp:
        engine = Engine()
        journal = Journal.open(Path(tmp))
        sequencer = Sequencer(engine, journal)
        await sequencer.start()
        await sequencer.submit(AddInstrument(ts=0, spec=listing.spec))
        venue = VenueCore(engine=engine, sequencer=sequencer, listings=[listing], keys=_keys())
        app = create_app(venue, config=config)
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                               **uvicorn_options(app)))
        await server.serve()
        await sequencer.stop()
        journal.close()


def _start_server(fair: bool) -> tuple[subprocess.Popen[bytes], str]:
    import socket

    port = _free_port()
    proc = subprocess.Popen([sys.executable, __file__, "--serve", str(port), "--mode", "fair" if fair else "fifo"],
                            cwd=REPO)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("benchmark server did not start")


def _order(rng: random.Random) -> tuple[str, str, str]:
    side = "buy" if rng.random() < 0.5 else "sell"
    offset = rng.randint(-5, 5)
    price = 10_000 + offset if side == "buy" else 10_000 - offset
    return side, str(rng.randint(1, 5)), f"{price / 100:.2f}"


async def _victim(url: str, orders: int, seed: int, rate: float) -> list[float]:
    """One order at a time, at most ``rate`` a second (inside its own limit)."""
    from venueclient import VenueClient

    rng = random.Random(seed)
    latencies: list[float] = []
    async with VenueClient(url, f"k-{VICTIM}", _private_key(VICTIM)) as client:
        stream = await client.connect(heartbeat_interval=5)
        begin = time.perf_counter()
        for i in range(orders):
            side, qty, price = _order(rng)
            wait = begin + i / rate - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            start = time.perf_counter()
            await stream.place("OMN-A", side, qty, price, client_order_id=f"v-{seed}-{i}")
            latencies.append(time.perf_counter() - start)
        await stream.close()
    return latencies


async def _noisy(url: str, rate: float, stop: asyncio.Event, counts: dict[str, int]) -> None:
    """Offers ``rate`` orders/s (paced in 10 ms slices), up to 64 in flight; refusals are counted."""
    from venueclient import ApiError, VenueClient

    rng = random.Random(7)
    async with VenueClient(url, f"k-{NOISY}", _private_key(NOISY)) as client:
        stream = await client.connect(heartbeat_interval=5)
        window = asyncio.Semaphore(64)
        tasks: set[asyncio.Task[None]] = set()

        async def one(i: int) -> None:
            side, qty, price = _order(rng)
            try:
                await stream.place("OMN-A", side, qty, price, client_order_id=f"n-{i}")
                counts["acked"] += 1
            except ApiError as err:
                counts[err.code] = counts.get(err.code, 0) + 1
            finally:
                window.release()

        start = time.perf_counter()
        sent = 0
        while not stop.is_set():
            due = int((time.perf_counter() - start) * rate)
            while sent < due and not stop.is_set():
                await window.acquire()
                task = asyncio.create_task(one(sent))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                sent += 1
            await asyncio.sleep(0.01)
        await asyncio.gather(*tasks)
        counts["offered"] = sent
        await stream.close()


async def _row(name: str, fair: bool, noisy_rate: float, orders: int, victim_rate: float) -> dict[str, Any]:
    proc, url = _start_server(fair)
    try:
        await _victim(url, 50, 99, victim_rate)  # warm-up
        counts: dict[str, int] = {"acked": 0}
        stop = asyncio.Event()
        noisy = asyncio.create_task(_noisy(url, noisy_rate, stop, counts)) if noisy_rate else None
        if noisy is not None:
            await asyncio.sleep(1.0)  # the neighbour reaches its steady state first
        started = time.perf_counter()
        lat = await _victim(url, orders, 1, victim_rate)
        elapsed = time.perf_counter() - started
        stop.set()
        if noisy is not None:
            await noisy
    finally:
        proc.terminate()
        proc.wait(10)
    q = statistics.quantiles(sorted(lat), n=100)
    return {"row": name, "victim_orders": len(lat), "victim_orders_s": len(lat) / elapsed,
            "p50": q[49] * 1e3, "p99": q[98] * 1e3, "noisy": counts if noisy_rate else None}


async def _main(args: argparse.Namespace) -> None:
    from gateway import GatewayConfig

    rate = args.noisy_rate or GatewayConfig().rate_per_s
    victim_rate = args.victim_rate
    rows = [await _row("alone", True, 0.0, args.orders, victim_rate),
            await _row("noisy, fair", True, rate, args.orders, victim_rate),
            await _row("noisy, fifo", False, rate, args.orders, victim_rate)]
    for row in rows:
        print(json.dumps(row), file=sys.stderr)
    base = rows[0]
    print(f"victim ack latency, one order at a time at {victim_rate:g}/s, journal venue; neighbour offers "
          f"{rate:g} orders/s "
          f"(64 in flight); {os.cpu_count()} cores\n")
    print("| row | victim p50 ms | victim p99 ms | p99 / alone | neighbour acked | neighbour refused |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        noisy = r["noisy"] or {}
        refused = sum(v for k, v in noisy.items() if k not in ("acked", "offered"))
        print(f"| {r['row']} | {r['p50']:.2f} | {r['p99']:.2f} | {r['p99'] / base['p99']:.2f} | "
              f"{noisy.get('acked', '-')} | {refused if noisy else '-'} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=400)
    parser.add_argument("--victim-rate", type=float, default=50.0, help="orders/s the victim sends at most")
    parser.add_argument("--noisy-rate", type=float, default=0.0, help="orders/s the neighbour offers (0 = key limit)")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=["fair", "fifo"], default="fair", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(_serve(args.serve, args.mode == "fair"))
    else:
        asyncio.run(_main(args))


if __name__ == "__main__":
    main()
