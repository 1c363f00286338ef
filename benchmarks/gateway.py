#!/usr/bin/env python3
"""Gateway order entry over websocket: orders/s and ack latency percentiles against a live uvicorn.

    .venv/bin/python benchmarks/gateway.py [--orders 4000] [--venue fake|core|both]

The server runs in a subprocess (its own interpreter, so client and server do not share a GIL)
on a free loopback port. Venues:

* ``fake``: ``tests.gateway.fakes.FakeVenue`` around the real ``engine.Engine`` (no journal):
  the gateway + engine cost alone;
* ``core``: ``venue.core.VenueCore`` with ``journal.Sequencer`` over a real ``Journal`` in a
  temp directory (group commit + fsync per batch), no compliance/settlement/store.

* ``echo``: the reference, always run in the same invocation: a FastAPI websocket endpoint of the
  same reader/writer design (a reader that parses each JSON message, a writer task draining an
  outbound queue) that answers the welcome, login and each order with an acknowledgement of the
  venue's shape without any venue work. The table gives each venue row's orders/s as a ratio of
  the echo row with the same connections and window.

Each scenario opens ``connections`` logged-in websockets; each keeps up to ``window`` orders in
flight (window 1 = send, wait for the ack, send the next). Orders are limit orders around a mid
price on both sides, so about half of them trade. Latency = client send -> ack received.

After the closed-loop rows, each server gets a paced (open-loop) row: 4 connections send at a
fixed total rate of half the orders/s that server reached pipelined (4 x 32) in this run, each
order on its schedule whatever the acks do; its latency is measured from the scheduled send
time (coordinated omission corrected). ``server CPU us/order`` is the server process's CPU time
(user + system, from ``/proc``) over the timed window divided by the orders: the figure that the
shared machine's noise disturbs least.

Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import faulthandler
import hashlib
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
# This file is named like the package it measures: keep its own directory off the import path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(REPO))

PARTICIPANTS = [f"bench{i}" for i in range(8)]


def _private_key(name: str) -> bytes:
    return hashlib.sha256(f"omn-bench-{name}".encode()).digest()


def _keys() -> list[Any]:
    from gateway.ports import ApiKey, Role
    from venueclient import public_key_of

    return [ApiKey(key_id=f"k-{p}", participant=p, role=Role.TRADER, public_key=public_key_of(_private_key(p)))
            for p in PARTICIPANTS]


# ---------------------------------------------------------------- server side (subprocess)


def _echo_app() -> Any:
    """The reference server: the venue's websocket framing (welcome, login, req_id replies) and a
    reader/writer pair per connection, and nothing else."""
    from fastapi import FastAPI, WebSocket, WebSocketDisconnect
    from starlette.routing import WebSocketRoute

    app = FastAPI()
    ids = iter(range(1, 2**62))

    async def ws(sock: WebSocket) -> None:
        await sock.accept()
        out: asyncio.Queue[str | None] = asyncio.Queue()

        async def writer() -> None:
            while (text := await out.get()) is not None:
                await sock.send_text(text)

        task = asyncio.create_task(writer())
        out.put_nowait(json.dumps({"op": "welcome", "session_id": "echo", "nonce": "n", "heartbeat_timeout_s": 10}))
        try:
            while True:
                msg = json.loads(await sock.receive_text())
                op, rid = msg.get("op"), msg.get("req_id")
                if op == "login":
                    result: dict[str, Any] = {"participant": msg["key_id"], "role": "trader", "session_id": "echo"}
                elif op == "new_order":
                    result = {"order_id": next(ids), "client_order_id": msg.get("client_order_id"),
                              "symbol": msg["symbol"], "side": msg["side"], "status": "open", "price": msg["price"],
                              "qty": msg["qty"], "filled_qty": "0", "remaining_qty": msg["qty"], "fills": [],
                              "cancel_reason": None, "priority_kept": None, "ts": time.time_ns()}
                else:
                    result = {}
                out.put_nowait(json.dumps({"op": op, "req_id": rid, "ok": True, "result": result},
                                          separators=(",", ":")))
        except WebSocketDisconnect:
            pass
        finally:
            out.put_nowait(None)
            await task

    app.router.routes.append(WebSocketRoute("/v1/ws", ws))  # plain Starlette route: no annotation injection
    return app


async def _serve(port: int, venue_kind: str) -> None:
    import uvicorn

    if venue_kind == "echo":
        echo = uvicorn.Server(uvicorn.Config(_echo_app(), host="127.0.0.1", port=port, log_level="warning",
                                             ws="websockets-sansio", ws_max_queue=10_000))
        await echo.serve()
        return

    from engine import AddInstrument, Engine
    from gateway import GatewayConfig, create_app
    from tests.gateway.fakes import FakeVenue, make_listing

    listing = make_listing("OMN-A", max_qty=10**9)
    config = GatewayConfig(rate_per_s=1e9, rate_burst=10**9, ws_max_in_flight=10_000)
    cleanup: list[Any] = []
    venue: Any
    if venue_kind == "fake":
        venue = FakeVenue([listing], _keys())
    else:
        from journal import Journal, Sequencer
        from venue.core import VenueCore

        tmp = tempfile.TemporaryDirectory(prefix="bench-journal-")
        engine = Engine()
        journal = Journal.open(Path(tmp.name))
        sequencer = Sequencer(engine, journal)
        await sequencer.start()
        await sequencer.submit(AddInstrument(ts=0, spec=listing.spec))
        venue = VenueCore(engine=engine, sequencer=sequencer, listings=[listing], keys=_keys())
        cleanup += [sequencer.stop, journal.close, tmp.cleanup]
    server = uvicorn.Server(uvicorn.Config(create_app(venue, config=config), host="127.0.0.1", port=port,
                                           log_level="warning", ws="websockets-sansio", ws_max_queue=10_000))
    await server.serve()
    for step in cleanup:
        result = step()
        if asyncio.iscoroutine(result):
            await result


# ---------------------------------------------------------------- client side


async def _paced_connection(url: str, participant: str, orders: int, rate: float, seed: int,
                            latencies: list[float]) -> int:
    """Open loop: order ``i`` is sent at ``start + i / rate`` whatever the earlier acks do;
    latency counts from that scheduled time (coordinated omission corrected)."""
    from venueclient import VenueClient

    rng = random.Random(seed)
    async with VenueClient(url, f"k-{participant}", _private_key(participant)) as client:
        stream = await client.connect(heartbeat_interval=5)

        async def one(i: int, due: float) -> None:
            side = "buy" if rng.random() < 0.5 else "sell"
            offset = rng.randint(-5, 5)
            price = 10_000 + offset if side == "buy" else 10_000 - offset
            await stream.place("OMN-A", side, str(rng.randint(1, 5)), f"{price / 100:.2f}",
                               client_order_id=f"{participant}-p{seed}-{i}")
            latencies.append(time.perf_counter() - due)

        tasks = []
        start = time.perf_counter()
        for i in range(orders):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i, due)))
        await asyncio.gather(*tasks)
        await stream.close()
    return 0


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (Linux ``/proc``; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _connection(url: str, participant: str, orders: int, window: int, seed: int,
                      latencies: list[float]) -> int:
    from venueclient import VenueClient

    rng = random.Random(seed)
    filled = 0
    async with VenueClient(url, f"k-{participant}", _private_key(participant)) as client:
        stream = await client.connect(heartbeat_interval=5)
        sem = asyncio.Semaphore(window)

        async def one(i: int) -> None:
            nonlocal filled
            side = "buy" if rng.random() < 0.5 else "sell"
            offset = rng.randint(-5, 5)
            price = 10_000 + offset if side == "buy" else 10_000 - offset  # ticks of 0.01 -> "100.05"
            try:
                start = time.perf_counter()
                ack = await stream.place("OMN-A", side, str(rng.randint(1, 5)), f"{price / 100:.2f}",
                                         client_order_id=f"{participant}-{seed}-{i}")
                latencies.append(time.perf_counter() - start)
                filled += ack["status"] != "open"
            finally:
                sem.release()

        tasks = []
        for i in range(orders):
            await sem.acquire()
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
        await stream.close()
    return filled


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _start_server(venue_kind: str) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    proc = subprocess.Popen([sys.executable, __file__, "--serve", str(port), "--venue", venue_kind], cwd=REPO)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60  # a loaded machine can take a while to start a journaled venue
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc, url
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("benchmark server did not start")


async def _scenario(venue_kind: str, connections: int, window: int, orders: int,
                    rate: float | None = None) -> dict[str, Any]:
    """Closed loop (``window`` in flight per connection), or paced at ``rate`` orders/s in total."""
    proc, url = _start_server(venue_kind)
    try:
        latencies: list[float] = []
        per_conn = orders // connections
        await asyncio.gather(*[_connection(url, PARTICIPANTS[c], 50, max(1, min(window, 32)), 1000 + c, [])
                               for c in range(connections)])  # warm-up
        cpu = _cpu_s(proc.pid)
        start = time.perf_counter()
        if rate is None:
            filled = await asyncio.gather(*[_connection(url, PARTICIPANTS[c], per_conn, window, c, latencies)
                                            for c in range(connections)])
        else:
            filled = await asyncio.gather(*[_paced_connection(url, PARTICIPANTS[c], per_conn, rate / connections, c,
                                                              latencies) for c in range(connections)])
        elapsed = time.perf_counter() - start
        cpu = _cpu_s(proc.pid) - cpu
    finally:
        proc.terminate()
        proc.wait(10)
    lat = sorted(latencies)
    q = statistics.quantiles(lat, n=100)
    return {"venue": venue_kind, "connections": connections, "window": window, "orders": len(lat),
            "orders_s": len(lat) / elapsed, "p50": q[49] * 1e3, "p90": q[89] * 1e3, "p99": q[98] * 1e3,
            "traded": sum(filled) / max(len(lat), 1), "cpu_us": cpu / max(len(lat), 1) * 1e6, "rate": rate}


async def _main(args: argparse.Namespace) -> None:
    kinds = ["echo", *{"both": ["fake", "core"], "echo": []}.get(args.venue, [args.venue])]
    scenarios = [(1, 1), (4, 1), (4, 32)]
    rows = []
    for kind in kinds:
        for connections, window in scenarios:
            row = await _scenario(kind, connections, window, args.orders)
            rows.append(row)
            print(json.dumps(row), file=sys.stderr)
        pipelined = rows[-1]["orders_s"]  # the last scenario: 4 connections x 32 in flight
        row = await _scenario(kind, 4, 0, args.orders // 2, rate=pipelined / 2)
        rows.append(row)
        print(json.dumps(row), file=sys.stderr)
    echo = {(r["connections"], r["window"]): r for r in rows if r["venue"] == "echo"}
    names = {"echo": "echo reference", "fake": "venue, no journal", "core": "venue + journal"}
    print(f"gateway websocket order entry, {os.cpu_count()} cores, {args.orders} orders per row; "
          "ratio = orders/s / echo reference orders/s (same connections and window, same run); "
          "paced rows: open loop at half that server's pipelined orders/s, latency from the scheduled send\n")
    print("| server | connections | in flight per conn | orders/s | ratio to echo | ack p50 ms | p90 ms | p99 ms "
          "| server CPU us/order | echo CPU / server CPU |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        ref = echo[(r["connections"], r["window"])]
        flight = f"paced {r['rate']:.0f}/s" if r["rate"] else str(r["window"])
        ratio = "-" if r["rate"] else f"{r['orders_s'] / ref['orders_s']:.0%}"
        cpu_ratio = f"{ref['cpu_us'] / r['cpu_us']:.0%}" if r["cpu_us"] else "-"
        print(f"| {names[r['venue']]} | {r['connections']} | {flight} | {r['orders_s']:.0f} | {ratio} | "
              f"{r['p50']:.2f} | {r['p90']:.2f} | {r['p99']:.2f} | {r['cpu_us']:.0f} | {cpu_ratio} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=4000)
    parser.add_argument("--venue", choices=["fake", "core", "both", "echo"], default="both")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        faulthandler.register(signal.SIGUSR1)  # `kill -USR1 <pid>` dumps the server's stacks
        asyncio.run(_serve(args.serve, args.venue))
    else:
        asyncio.run(_main(args))


if __name__ == "__main__":
    main()
