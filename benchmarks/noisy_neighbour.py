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


async def _serve(port: int, fair: bool, key_rate: float) -> None:
    import uvicorn

    from engine import AddInstrument, Engine
    from gateway import GatewayConfig, create_app
    from gateway.server import uvicorn_options
    from journal import Journal, Sequencer
    from tests.gateway.fakes import make_listing
    from venue.core import VenueCore

    listing = make_listing("OMN-A", max_qty=10**9)
    limits: dict[str, Any] = {} if not key_rate else {"rate_per_s": key_rate, "rate_burst": int(2 * key_rate)}
    config = GatewayConfig(**limits) if fair else GatewayConfig(venue_in_flight=10**9, **limits)
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


def _start_server(fair: bool, key_rate: float) -> tuple[subprocess.Popen[bytes], str]:
    import socket

    port = _free_port()
    proc = subprocess.Popen([sys.executable, __file__, "--serve", str(port), "--mode", "fair" if fair else "fifo",
                             "--key-rate", str(key_rate)], cwd=REPO)
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


async def _noisy(url: str, rate: float, in_flight: int, stop: asyncio.Event, counts: dict[str, int]) -> None:
    """Offers ``rate`` orders/s (paced in 10 ms slices), up to ``in_flight`` awaiting acks; refusals are counted,
    and a connection the gateway closes (4029 after too many refusals) is opened again."""
    from venueclient import ApiError, VenueClient

    rng = random.Random(7)
    sent = 0
    start = time.perf_counter()
    async with VenueClient(url, f"k-{NOISY}", _private_key(NOISY)) as client:
        while not stop.is_set():
            stream = await client.connect(heartbeat_interval=5)
            window = asyncio.Semaphore(in_flight)
            tasks: set[asyncio.Task[None]] = set()

            async def one(i: int, stream: Any = stream, window: asyncio.Semaphore = window) -> None:
                side, qty, price = _order(rng)
                try:
                    await stream.place("OMN-A", side, qty, price, client_order_id=f"n-{i}")
                    counts["acked"] += 1
                except ApiError as err:
                    counts[err.code] = counts.get(err.code, 0) + 1
                except Exception:
                    counts["lost"] = counts.get("lost", 0) + 1
                finally:
                    window.release()

            while not stop.is_set() and not stream.closed.is_set():
                due = int((time.perf_counter() - start) * rate)
                while sent < due and not stop.is_set() and not stream.closed.is_set():
                    await window.acquire()
                    task = asyncio.create_task(one(sent))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                    sent += 1
                await asyncio.sleep(0.01)
            await asyncio.gather(*tasks)
            if stream.closed.is_set():
                counts["closed"] = counts.get("closed", 0) + 1
            else:
                await stream.close()
    counts["offered"] = sent


async def _row(name: str, fair: bool, noisy_rate: float, orders: int, victim_rate: float,
               key_rate: float, window: int) -> dict[str, Any]:
    proc, url = _start_server(fair, key_rate)
    try:
        await _victim(url, 50, 99, victim_rate)  # warm-up
        counts: dict[str, int] = {"acked": 0}
        stop = asyncio.Event()
        noisy_started = time.perf_counter()
        noisy = asyncio.create_task(_noisy(url, noisy_rate, window, stop, counts)) if noisy_rate else None
        if noisy is not None:
            await asyncio.sleep(1.0)  # the neighbour reaches its steady state first
        started = time.perf_counter()
        lat = await _victim(url, orders, 1, victim_rate)
        elapsed = time.perf_counter() - started
        stop.set()
        if noisy is not None:
            await noisy
            counts["acked_per_s"] = int(counts["acked"] / (time.perf_counter() - noisy_started))
    finally:
        proc.terminate()
        proc.wait(10)
    q = statistics.quantiles(sorted(lat), n=100)
    return {"row": name, "victim_orders": len(lat), "victim_orders_s": len(lat) / elapsed,
            "p50": q[49] * 1e3, "p99": q[98] * 1e3, "noisy": counts if noisy_rate else None}


async def _main(args: argparse.Namespace) -> None:
    from gateway import GatewayConfig

    rate = args.noisy_rate or args.key_rate or GatewayConfig().rate_per_s
    common = {"orders": args.orders, "victim_rate": args.victim_rate, "key_rate": args.key_rate,
              "window": args.window}
    rows = [await _row("alone", True, 0.0, **common),
            await _row("noisy, fair", True, rate, **common),
            await _row("noisy, fifo", False, rate, **common)]
    for row in rows:
        print(json.dumps(row), file=sys.stderr)
    base = rows[0]
    limit = args.key_rate or GatewayConfig().rate_per_s
    print(f"victim ack latency, one order at a time at {args.victim_rate:g}/s, journal venue; key limit "
          f"{limit:g}/s; neighbour offers {rate:g} orders/s ({args.window} in flight)"
          f"; {os.cpu_count()} cores\n")
    print("| row | victim p50 ms | victim p99 ms | p99 / alone | neighbour acked (per s) | neighbour refused | "
          "neighbour closed |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        noisy = r["noisy"] or {}
        refused = sum(v for k, v in noisy.items() if k not in ("acked", "offered", "closed", "acked_per_s"))
        print(f"| {r['row']} | {r['p50']:.2f} | {r['p99']:.2f} | {r['p99'] / base['p99']:.2f} | "
              f"{noisy.get('acked', '-')} ({noisy.get('acked_per_s', '-')}) | {refused if noisy else '-'} | "
              f"{noisy.get('closed', 0) if noisy else '-'} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=400)
    parser.add_argument("--victim-rate", type=float, default=50.0, help="orders/s the victim sends at most")
    parser.add_argument("--noisy-rate", type=float, default=0.0, help="orders/s the neighbour offers (0 = key limit)")
    parser.add_argument("--key-rate", type=float, default=0.0, help="per-key limit (0 = GatewayConfig's default)")
    parser.add_argument("--window", type=int, default=64, help="the neighbour's orders awaiting acks")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=["fair", "fifo"], default="fair", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(_serve(args.serve, args.mode == "fair", args.key_rate))
    else:
        asyncio.run(_main(args))


if __name__ == "__main__":
    main()
