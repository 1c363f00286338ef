"""Open-loop load test of the whole venue: fixed offered rates, latency from the scheduled send time.

``python -m loadtests.openloop --rates 250,500,1000,2000,4000 --duration 10 --chain anvil --out F``
starts one venue host (``loadtests.host``: fresh chain, SQLite, settlement) and, per load point,
offers a fixed number of orders per second of this mix (``--mix``, fractions):

- ``quote`` (60%): market makers' post-only quotes at four levels a side over one websocket each,
  ``new_order`` for an empty level and ``amend`` (by client order id, so pipelined) otherwise;
- ``ioc`` (20%): investors' marketable IOC limits across the quotes over signed REST;
- ``passive`` (10%) and ``cancel`` (10%): investors' resting GTC limits over REST, cancelled again
  (a cancel with nothing to cancel places a passive order instead);
- plus ``--subscribers`` market-data clients on the ``book`` channel (not part of the rate).

Every send time is fixed before the point starts (evenly spaced, kinds drawn from a seeded RNG);
a late generator sends late but latency is always measured from the scheduled time, so stalls
are charged to the venue instead of hidden (coordinated omission corrected). The generator's own
lateness is reported too (``gen_lag``): if it is large the generator, not the venue, was the
limit. Percentiles come from ``loadtests.histogram`` (exact to 0.4%). Each point ends with every
order cancelled, the private streams synced, and ``loadtests.check`` on the venue's view against
every fill the clients saw so far. The run stops after the first saturated point (achieved rate
below 90% of offered, or websocket ack p99 above 1 s).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import math
import os
import random
import sys
import tempfile
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from websockets.asyncio.client import ClientConnection, connect

from gateway.errors import http_status
from loadtests import LoadTestError, cli
from loadtests.check import check
from loadtests.histogram import Histogram
from loadtests.run import Host
from venueclient.signing import HEADER_KEY, HEADER_SIGNATURE, HEADER_TIMESTAMP, login_payload, sign, signing_payload

DEFAULT_RATES = "250,500,1000,2000,4000"
DEFAULT_MIX = "quote=0.6,ioc=0.2,passive=0.1,cancel=0.1"
KINDS = ("quote", "ioc", "passive", "cancel")
LEVELS = 4  # quote levels per side and maker
SATURATION_ACHIEVED = 0.9  # achieved / offered below this: saturated
SATURATION_P99_S = 1.0  # websocket ack p99 above this: saturated
REPLY_TIMEOUT_S = 30.0  # a reply later than this (after the schedule ended) counts as TIMEOUT
FAIR_START_CENTS = 4_500_000  # 45,000.00
QUIESCE_TIMEOUT_S = 180.0  # cancelling everything after a point (behind its backlog)
IDLE_S = 3.0  # the venue's idle CPU is measured this long before the first point
HEARTBEAT_S = 5.0  # websocket heartbeat period (the server's timeout is 30 s)
REST_CONNECTIONS = 8  # keep-alive connections per investor (the per-address cap is 256)


CLIENT_CODES = frozenset({"TRANSPORT", "TIMEOUT"})  # the generator's own: no reply, always errors


def _refusal(code: str) -> bool:
    """A refusal that is part of trading (amending an order just filled, post-only would cross)."""
    return http_status(code) in (404, 422)


def _price(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


class Market:
    """A fair value in cents that drifts: makers quote around it, investors cross it."""

    def __init__(self, seed: int) -> None:
        self.fair = FAIR_START_CENTS
        self.rng = random.Random(seed)

    def drift(self) -> int:
        self.fair = max(100_000, self.fair + round(self.rng.gauss(0, self.fair * 0.00005)))
        return self.fair

    def at(self, basis_points: int) -> int:
        return self.fair + self.fair * basis_points // 10_000


@dataclass
class Observed:
    """What the clients saw over the whole run (the consistency check compares it with the venue)."""

    stream_fills: list[dict[str, Any]] = field(default_factory=list)
    ack_fills: list[dict[str, Any]] = field(default_factory=list)
    md_crossed: int = 0
    md_gaps: int = 0


@dataclass
class PointStats:
    """One load point's measurements (histograms in nanoseconds)."""

    ws_ack: Histogram = field(default_factory=Histogram)
    rest: Histogram = field(default_factory=Histogram)
    rest_ioc: Histogram = field(default_factory=Histogram)
    md: Histogram = field(default_factory=Histogram)
    gen_lag: Histogram = field(default_factory=Histogram)
    noisy: Histogram = field(default_factory=Histogram)  # the noisy neighbour's own acks
    noisy_errors: Counter[str] = field(default_factory=Counter)
    sent: Counter[str] = field(default_factory=Counter)
    completed: int = 0
    last_done: float = 0.0
    errors: Counter[str] = field(default_factory=Counter)
    rejections: Counter[str] = field(default_factory=Counter)
    outstanding: int = 0
    recording_md: bool = True  # off once the point's replies are in (the cancels after it are not load)

    def done(self, hist: Histogram, when: float, now: float, code: str | None) -> None:
        """One order command answered at ``now`` (loop clock) that was scheduled for ``when``."""
        hist.record(max(0, round((now - when) * 1e9)))
        self.completed += 1
        self.outstanding -= 1
        self.last_done = max(self.last_done, now)
        if code is not None:
            (self.rejections if code not in CLIENT_CODES and _refusal(code) else self.errors)[code] += 1


def _fill(participant: str, fill: dict[str, Any]) -> dict[str, Any]:
    return {"participant": participant, "trade_id": fill["trade_id"], "side": fill["side"],
            "order_id": fill["order_id"], "price": fill["price"], "qty": fill["qty"]}


class WsConn:
    """One logged-in websocket: a sender queue (sends never block the scheduler), a reader that
    routes replies by ``req_id``, fills to ``Observed`` and book messages to ``on_book``."""

    def __init__(self, run: Run, participant: str, key: dict[str, str]) -> None:
        self.run = run
        self.participant = participant
        self.key = key
        self.ws: ClientConnection | None = None
        self._ids = itertools.count(1)
        self._waiters: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._timed: dict[int, Callable[[dict[str, Any], float], None]] = {}
        self._out: asyncio.Queue[str] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self.on_book: Callable[[dict[str, Any]], None] | None = None
        self.closed: str | None = None

    async def open(self, *, cancel_on_disconnect: bool) -> None:
        self.ws = await connect(self.run.ws_url, compression=None, max_size=4 * 1024 * 1024, ping_interval=None,
                                open_timeout=30)
        welcome = json.loads(await self.ws.recv())
        self._tasks = [asyncio.create_task(self._read()), asyncio.create_task(self._write()),
                       asyncio.create_task(self._keepalive())]
        ts = int(time.time() * 1000)
        reply = await self.request("login", key_id=self.key["key_id"], ts=ts,
                                   signature=sign(self.key["private_key"], login_payload(ts, welcome["nonce"])),
                                   cancel_on_disconnect=cancel_on_disconnect)
        if not reply.get("ok"):
            raise LoadTestError(f"{self.participant}: login refused: {reply.get('error')}")

    async def request(self, op: str, timeout: float = REPLY_TIMEOUT_S, **fields: Any) -> dict[str, Any]:
        rid = next(self._ids)
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiters[rid] = fut
        self._out.put_nowait(json.dumps({"op": op, "req_id": rid, **fields}))
        try:
            return await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            raise LoadTestError(f"{self.participant}: no reply to {op} within {timeout:.0f} s"
                                f" (websocket: {self.closed or 'open'})") from None
        finally:
            self._waiters.pop(rid, None)

    def send_timed(self, op: str, fields: dict[str, Any], on_reply: Callable[[dict[str, Any], float], None]) -> None:
        rid = next(self._ids)
        self._timed[rid] = on_reply
        self._out.put_nowait(json.dumps({"op": op, "req_id": rid, **fields}))

    def forget_timed(self) -> int:
        """Drop callbacks still waiting (after the reply timeout); returns how many."""
        n = len(self._timed)
        self._timed.clear()
        return n

    async def _keepalive(self) -> None:
        """A heartbeat every few seconds: the server closes a silent websocket (heartbeat timeout)."""
        while True:
            await asyncio.sleep(HEARTBEAT_S)
            self._out.put_nowait(json.dumps({"op": "heartbeat", "req_id": next(self._ids)}))

    async def _write(self) -> None:
        assert self.ws is not None
        while True:
            await self.ws.send(await self._out.get())

    async def _read(self) -> None:
        assert self.ws is not None
        try:
            async for raw in self.ws:
                now = time.monotonic()
                msg = json.loads(raw)
                for m in msg if isinstance(msg, list) else (msg,):
                    self._route(m, now)
        except Exception as exc:  # pending requests then time out, with this reason
            self.closed = f"{type(exc).__name__}: {exc}"
        else:
            self.closed = f"closed by the server ({self.ws.close_code} {self.ws.close_reason})"

    def _route(self, msg: dict[str, Any], now: float) -> None:
        channel = msg.get("channel")
        if channel == "fills":
            self.run.observed.stream_fills.append(_fill(self.participant, msg))
        elif channel == "book":
            if self.on_book is not None:
                self.on_book(msg)
        elif channel is None:
            rid = msg.get("req_id")
            if not isinstance(rid, int):
                return
            callback = self._timed.pop(rid, None)
            if callback is not None:
                callback(msg, now)
                return
            waiter = self._waiters.get(rid)
            if waiter is not None and not waiter.done():
                waiter.set_result(msg)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self.ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.ws.close(), 5)


class Maker:
    """Post-only quotes at ``LEVELS`` levels a side; each scheduled quote targets the next level."""

    def __init__(self, run: Run, participant: str, key: dict[str, str]) -> None:
        self.run = run
        self.participant = participant
        self.conn = WsConn(run, participant, key)
        self.slots: list[str | None] = [None] * (2 * LEVELS)
        self._next_slot = itertools.count()
        self._coids = itertools.count(1)
        self.rng = random.Random(participant)

    async def open(self) -> None:
        await self.conn.open(cancel_on_disconnect=True)
        await self.conn.request("subscribe", channel="fills")

    def quote(self, when: float) -> None:
        run = self.run
        run.market.drift()
        slot = next(self._next_slot) % len(self.slots)
        side = "buy" if slot % 2 == 0 else "sell"
        offset = 10 + 10 * (slot // 2)
        price = _price(run.market.at(-offset if side == "buy" else offset))
        qty = str(self.rng.randint(1, 5))
        coid = self.slots[slot]
        if coid is None:
            coid = f"{self.participant}-{run.tag}-{next(self._coids)}"
            self.slots[slot] = coid
            op, fields = "new_order", {"symbol": run.symbol, "side": side, "qty": qty, "price": price,
                                       "post_only": True, "client_order_id": coid}
        else:
            op, fields = "amend", {"client_order_id": coid, "price": price, "qty": qty}
        stats = run.stats

        def on_reply(msg: dict[str, Any], now: float) -> None:
            code = None if msg.get("ok") else str(msg.get("error", {}).get("code", "UNKNOWN"))
            live = code is None and msg.get("result", {}).get("status") in ("open", "partially_filled")
            if not live and self.slots[slot] == coid:
                self.slots[slot] = None  # filled, refused or gone: the next quote here is a new order
            stats.done(stats.ws_ack, when, now, code)

        stats.outstanding += 1
        self.conn.send_timed(op, fields, on_reply)

    async def cancel_all(self) -> None:
        # behind a saturated point's backlog: the venue answers in order
        await self.conn.request("mass_cancel", timeout=QUIESCE_TIMEOUT_S, symbol=self.run.symbol)
        self.slots = [None] * len(self.slots)


class HttpPool:
    """Signed REST over a few keep-alive HTTP/1.1 connections (plain asyncio streams: the client
    must cost far less than the server it measures)."""

    def __init__(self, host: str, port: int, size: int) -> None:
        self.host, self.port = host, port
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self._slots = asyncio.Semaphore(size)

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        async with self._slots:
            if self._idle:
                try:
                    return await self._post(self._idle.pop(), path, body, headers)
                except asyncio.IncompleteReadError as exc:
                    if exc.partial:
                        raise
                    # the server closed the idle keep-alive connection before reading this request:
                    # nothing was processed, send it again on a new connection
            return await self._post(await asyncio.open_connection(self.host, self.port), path, body, headers)

    async def _post(self, conn: tuple[asyncio.StreamReader, asyncio.StreamWriter], path: str, body: bytes,
                    headers: dict[str, str]) -> tuple[int, bytes]:
        reader, writer = conn
        try:
            head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
            writer.write(f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
                         f"Content-Length: {len(body)}\r\n{head}\r\n".encode() + body)
            raw = await reader.readuntil(b"\r\n\r\n")
            lines = raw.decode("latin-1").split("\r\n")
            status = int(lines[0].split(" ", 2)[1])
            parts = (line.partition(":") for line in lines[1:] if line)
            fields = {k.strip().lower(): v.strip() for k, _, v in parts}
            if "content-length" not in fields:
                raise LoadTestError(f"response without content-length: {lines[0]}")
            data = await reader.readexactly(int(fields["content-length"]))
        except BaseException:
            writer.close()
            raise
        if fields.get("connection", "").lower() == "close":
            writer.close()
        else:
            self._idle.append(conn)
        return status, data

    def close(self) -> None:
        for _, writer in self._idle:
            writer.close()
        self._idle.clear()


class Investor:
    """Signed REST orders; a websocket listens to the investor's own fills."""

    def __init__(self, run: Run, participant: str, key: dict[str, str]) -> None:
        self.run = run
        self.participant = participant
        self.key = key
        self.listener = WsConn(run, participant, key)
        self.http = HttpPool(run.http_host, run.http_port, REST_CONNECTIONS)
        self.rng = random.Random(participant)
        self.resting: deque[int] = deque()
        self._coids = itertools.count(1)
        self._last_ts = 0

    async def open(self) -> None:
        await self.listener.open(cancel_on_disconnect=False)
        await self.listener.request("subscribe", channel="fills")

    async def post(self, path: str, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        body = json.dumps(payload).encode()
        ts = self._last_ts = max(int(time.time() * 1000), self._last_ts + 1)
        headers = {HEADER_KEY: self.key["key_id"], HEADER_TIMESTAMP: str(ts),
                   HEADER_SIGNATURE: sign(self.key["private_key"], signing_payload(ts, "POST", path, body))}
        status, data = await self.http.post(path, body, headers)
        try:
            parsed = json.loads(data) if data else {}
        except ValueError:
            parsed = {}
        return status, parsed if isinstance(parsed, dict) else {}

    def order(self, kind: str, when: float) -> None:
        order_id = None
        if kind == "cancel":
            if self.resting:
                order_id = self.resting.popleft()  # taken now: two cancels never race for one order
            else:
                kind = "passive"
        self.run.stats.outstanding += 1
        self.run.spawn(self._order(kind, when, order_id))

    async def _order(self, kind: str, when: float, order_id: int | None) -> None:
        run, stats = self.run, self.run.stats
        side = self.rng.choice(("buy", "sell"))
        payload: dict[str, Any]
        if kind == "ioc":
            path, payload = "/v1/orders", {
                "symbol": run.symbol, "side": side, "qty": str(self.rng.randint(1, 3)), "tif": "ioc",
                "price": _price(run.market.at(30 if side == "buy" else -30)),
                "client_order_id": f"{self.participant}-{run.tag}-{next(self._coids)}"}
        elif kind == "passive":
            path, payload = "/v1/orders", {
                "symbol": run.symbol, "side": side, "qty": "1",
                "price": _price(run.market.at(-100 if side == "buy" else 100)),
                "client_order_id": f"{self.participant}-{run.tag}-{next(self._coids)}"}
        else:
            path, payload = "/v1/orders/cancel", {"order_id": order_id}
        try:
            status, data = await asyncio.wait_for(self.post(path, payload), REPLY_TIMEOUT_S)
        except (OSError, asyncio.IncompleteReadError, LoadTestError, TimeoutError) as exc:
            status, data = 0, {"error": {"code": "TIMEOUT" if isinstance(exc, TimeoutError) else "TRANSPORT"}}
        now = time.monotonic()
        error = data.get("error")
        code = None if status == 200 else str(error.get("code") if isinstance(error, dict) else f"HTTP_{status}")
        if code is None:
            for fill in data.get("fills", []):
                run.observed.ack_fills.append(_fill(self.participant, fill))
            if kind == "passive" and data.get("status") in ("open", "partially_filled"):
                self.resting.append(int(data["order_id"]))
        if kind == "ioc":
            stats.rest_ioc.record(max(0, round((now - when) * 1e9)))
        stats.done(stats.rest, when, now, code)

    async def cancel_all(self) -> None:
        status, data = await asyncio.wait_for(self.post("/v1/orders/mass-cancel", {"symbol": self.run.symbol}),
                                              QUIESCE_TIMEOUT_S)
        if status != 200:
            raise LoadTestError(f"{self.participant}: mass cancel refused: {status} {data}")
        self.resting.clear()


class Subscriber:
    """The ``book`` channel: fan-out latency of every delta (the sequencer's wall-clock timestamp
    -> arrival, same host), gaps, and a local book (snapshot + deltas) that must never cross."""

    def __init__(self, run: Run, participant: str, key: dict[str, str]) -> None:
        self.run = run
        self.conn = WsConn(run, participant, key)
        self.conn.on_book = self._on_book
        self.last = 0
        self.book: dict[str, dict[float, str]] = {"buy": {}, "sell": {}}

    async def open(self) -> None:
        await self.conn.open(cancel_on_disconnect=False)
        await self.conn.request("subscribe", channel="book", symbol=self.run.symbol)

    def _on_book(self, msg: dict[str, Any]) -> None:
        if msg.get("type") == "snapshot":
            self.last = int(msg.get("md_seq", 0))
            self.book = {"buy": {float(lv["price"]): lv["qty"] for lv in msg["bids"]},
                         "sell": {float(lv["price"]): lv["qty"] for lv in msg["asks"]}}
            return
        if msg.get("type") != "delta":
            return
        if self.run.stats.recording_md:
            self.run.stats.md.record(max(0, time.time_ns() - int(msg["ts"])))
        observed = self.run.observed
        if int(msg["prev_md_seq"]) > self.last:
            observed.md_gaps += 1
        self.last = max(self.last, int(msg["md_seq"]))
        levels = self.book[msg["side"]]
        if float(msg["qty"]):
            levels[float(msg["price"])] = msg["qty"]
        else:
            levels.pop(float(msg["price"]), None)
        bids, asks = self.book["buy"], self.book["sell"]
        if bids and asks and max(bids) >= min(asks):
            observed.md_crossed += 1


def schedule(rate: float, duration: float, mix: dict[str, float], seed: int) -> list[tuple[float, str]]:
    """Send offsets (seconds from the point's start) and kinds, all fixed before the point starts."""
    if rate <= 0 or duration <= 0:
        raise LoadTestError(f"rate and duration must be positive, got {rate} and {duration}")
    rng = random.Random(seed)
    kinds, weights = list(mix), list(mix.values())
    n = int(rate * duration)
    picks = rng.choices(kinds, weights=weights, k=n)
    return [(i / rate, kind) for i, kind in enumerate(picks)]


def parse_mix(text: str) -> dict[str, float]:
    mix: dict[str, float] = {}
    for part in text.split(","):
        name, _, value = part.partition("=")
        name = name.strip()
        if name not in KINDS:
            raise LoadTestError(f"--mix: unknown kind {name!r}; kinds are {', '.join(KINDS)}")
        try:
            mix[name] = float(value)
        except ValueError:
            raise LoadTestError(f"--mix: {part!r} is not kind=fraction") from None
        if mix[name] < 0:
            raise LoadTestError(f"--mix: {name} must not be negative")
    if not sum(mix.values()) > 0:
        raise LoadTestError("--mix: the fractions add up to zero")
    return mix


def parse_rates(text: str) -> list[float]:
    try:
        rates = [float(x) for x in text.split(",")]
    except ValueError:
        raise LoadTestError(f"--rates takes comma-separated orders/s, got {text!r}") from None
    if not rates or min(rates) <= 0:
        raise LoadTestError("--rates: every rate must be positive")
    return rates


def saturated(point: dict[str, Any]) -> str | None:
    """Why this point is past the venue's capacity, or None."""
    if point["achieved_per_s"] < SATURATION_ACHIEVED * point["offered_per_s"]:
        return f"achieved {point['achieved_per_s']:.0f} < {SATURATION_ACHIEVED:.0%} of offered"
    p99 = point["ws_ack"]["p99"]
    if p99 is not None and p99 > SATURATION_P99_S * 1000:
        return f"ws ack p99 {p99:.0f} ms > {SATURATION_P99_S * 1000:.0f} ms"
    return None


class Run:
    """The clients of one load test and the point loop."""

    def __init__(self, base_url: str, keys: dict[str, Any], *, makers: int, investors: int, subscribers: int,
                 mix: dict[str, float], seed: int, noisy: bool = False) -> None:
        split = urlsplit(base_url)
        self.http_host, self.http_port = split.hostname or "127.0.0.1", split.port or 80
        self.ws_url = base_url.replace("http", "ws", 1) + "/v1/ws"
        self.symbol = str(keys.get("symbol", "OMN-2029A"))
        self.tag = f"{os.getpid()}"
        self.market = Market(seed)
        self.mix = mix
        self.seed = seed
        self.observed = Observed()
        self.stats = PointStats()
        accounts = keys["keys"]
        self.makers = [Maker(self, f"mm-{i + 1}", accounts[f"mm-{i + 1}"]) for i in range(makers)]
        self.investors = [Investor(self, f"inv-{i + 1}", accounts[f"inv-{i + 1}"]) for i in range(investors)]
        # any participant may read market data; subscribers borrow investors' keys (read only)
        self.subscribers = [Subscriber(self, f"inv-{i % investors + 1}", accounts[f"inv-{i % investors + 1}"])
                            for i in range(subscribers)]
        # the noisy neighbour: one more market maker, outside the measured mix
        self.noisy = Maker(self, f"mm-{makers + 1}", accounts[f"mm-{makers + 1}"]) if noisy else None
        self._tasks: set[asyncio.Task[None]] = set()

    def spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def open(self) -> None:
        clients: list[Maker | Investor | Subscriber] = [*self.makers, *self.investors, *self.subscribers,
                                                         *([self.noisy] if self.noisy else [])]
        for client in clients:
            await client.open()  # one at a time: logins count against the per-address limit

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for conn in [*(m.conn for m in self.makers), *(s.conn for s in self.subscribers),
                     *([self.noisy.conn] if self.noisy else [])]:
            await conn.close()
        for investor in self.investors:
            await investor.listener.close()
            investor.http.close()

    async def offer(self, rate: float, duration: float, index: int, noisy_rate: float = 0.0) -> dict[str, Any]:
        """Offer ``rate`` orders/s for ``duration`` s; every reply is awaited (bounded). With
        ``noisy_rate`` the noisy neighbour pipelines that many orders/s besides (not counted in the rate)."""
        self.stats = stats = PointStats()
        plan = schedule(rate, duration, self.mix, self.seed + index)
        counters = {"quote": itertools.count(), "rest": itertools.count()}
        start = time.monotonic() + 0.1
        noisy = None
        if noisy_rate > 0:
            noisy = asyncio.create_task(self._noisy(noisy_rate, duration, start))
        i, n = 0, len(plan)
        while i < n:
            now = time.monotonic()
            when = start + plan[i][0]
            if when > now:
                await asyncio.sleep(when - now)
                now = time.monotonic()
            while i < n and start + plan[i][0] <= now:  # everything due by now, in order
                offset, kind = plan[i]
                when = start + offset
                stats.gen_lag.record(round((now - when) * 1e9))
                stats.sent[kind] += 1
                if kind == "quote":
                    self.makers[next(counters["quote"]) % len(self.makers)].quote(when)
                else:
                    self.investors[next(counters["rest"]) % len(self.investors)].order(kind, when)
                i += 1
            await asyncio.sleep(0)  # let readers and writers run between bursts
        end_of_schedule = time.monotonic()
        if noisy is not None:
            await noisy
        deadline = end_of_schedule + REPLY_TIMEOUT_S
        while stats.outstanding > 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        if stats.outstanding > 0:  # never answered: counted, and their callbacks dropped
            stats.errors["TIMEOUT"] += stats.outstanding
            for maker in (*self.makers, *([self.noisy] if self.noisy else [])):
                maker.conn.forget_timed()
            for task in list(self._tasks):
                task.cancel()
        stats.recording_md = False
        elapsed = max(stats.last_done, end_of_schedule) - start
        return self._point(rate, duration, len(plan), elapsed)

    async def _noisy(self, rate: float, duration: float, start: float) -> None:
        """Open loop too: post-only bids far below the market, each cancelled by the next command."""
        assert self.noisy is not None
        conn, stats = self.noisy.conn, self.stats
        coid = ""
        for k in range(int(rate * duration)):
            delay = start + k / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            when = start + k / rate
            if k % 2 == 0:
                coid = f"{self.noisy.participant}-{self.tag}-{k}"
                op, fields = "new_order", {"symbol": self.symbol, "side": "buy", "qty": "1", "post_only": True,
                                           "price": _price(self.market.at(-500)), "client_order_id": coid}
            else:
                op, fields = "cancel", {"client_order_id": coid}

            def on_reply(msg: dict[str, Any], now: float, when: float = when) -> None:
                stats.noisy.record(max(0, round((now - when) * 1e9)))
                if not msg.get("ok"):
                    stats.noisy_errors[str(msg.get("error", {}).get("code", "UNKNOWN"))] += 1

            conn.send_timed(op, fields, on_reply)

    def _point(self, rate: float, duration: float, scheduled: int, elapsed: float) -> dict[str, Any]:
        s = self.stats
        processed = s.completed - sum(s.errors.values())  # taken or refused by the venue, not throttled
        return {
            "offered_per_s": rate, "duration_s": duration, "scheduled": scheduled,
            "sent": dict(s.sent), "answered": s.completed, "processed": processed, "elapsed_s": round(elapsed, 2),
            "achieved_per_s": round(processed / elapsed, 1) if elapsed > 0 else 0.0,
            "ws_ack": s.ws_ack.summary(), "rest": s.rest.summary(), "rest_ioc": s.rest_ioc.summary(),
            "md_fanout": s.md.summary(), "gen_lag": s.gen_lag.summary(),
            "errors": dict(s.errors), "rejections": dict(s.rejections),
            **({"noisy_ack": s.noisy.summary(), "noisy_errors": dict(s.noisy_errors)} if s.noisy.count else {}),
        }

    async def quiesce(self) -> None:
        """Every order cancelled; every fill pushed before now read (a heartbeat is answered after)."""
        for maker in (*self.makers, *([self.noisy] if self.noisy else [])):
            await maker.cancel_all()
        for investor in self.investors:
            await investor.cancel_all()
        for conn in (*(m.conn for m in self.makers), *(i.listener for i in self.investors),
                     *([self.noisy.conn] if self.noisy else [])):
            await conn.request("heartbeat", timeout=QUIESCE_TIMEOUT_S)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process (Linux /proc); 0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    """Every descendant of ``pid`` (the anvil the venue host started)."""
    out: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                out += [int(child), *_children(int(child))]
    return out


class CpuMeter:
    """CPU seconds used during a load point by the venue, its children (anvil) and this generator."""

    def __init__(self, venue_pid: int) -> None:
        self.venue_pid = venue_pid
        self._start = self._now()

    def _now(self) -> tuple[float, float, float, float]:
        children = sum(_cpu_seconds(pid) for pid in _children(self.venue_pid))
        return _cpu_seconds(self.venue_pid), children, time.process_time(), time.monotonic()

    def used(self) -> dict[str, float]:
        now = self._now()
        venue, children, generator, wall = (b - a for a, b in zip(self._start, now, strict=True))
        return {"venue_cpu_s": round(venue, 2), "chain_cpu_s": round(children, 2),
                "generator_cpu_s": round(generator, 2), "wall_s": round(wall, 2)}


def _observed(run: Run) -> dict[str, Any]:
    o = run.observed
    return {"stream_fills": o.stream_fills, "ack_fills": o.ack_fills, "md_crossed": o.md_crossed}


async def _measure(run: Run, host: Host, rate: float, duration: float, index: int,
                   noisy_rate: float = 0.0) -> dict[str, Any]:
    """One load point, then every order cancelled and the consistency check of the run so far."""
    loadavg = os.getloadavg()[0]
    meter = CpuMeter(host.proc.pid)
    point = await run.offer(rate, duration, index, noisy_rate)
    point["cpu"] = cpu = meter.used()  # the point itself, not the check after it
    point["venue_cpu_ms_per_order"] = (round(1000 * cpu["venue_cpu_s"] / point["processed"], 3)
                                       if point["processed"] else None)
    point["loadavg_1m_before"] = round(loadavg, 2)
    point["loadavg_1m_after"] = round(os.getloadavg()[0], 2)
    await run.quiesce()
    view = await asyncio.to_thread(host.view)
    result = check(view, _observed(run))
    point["consistency"] = result.as_json()
    point["md_gaps"] = run.observed.md_gaps
    point["settlement_counts"] = view["settlement_counts"]
    point["saturated"] = saturated(point)
    return point


async def _noisy_neighbour(run: Run, host: Host, rate: float, args: argparse.Namespace) -> dict[str, Any]:
    """The same load point alone, next to the noisy neighbour twice, alone again (A B B A, so a drift
    of the machine's load over the four points weighs on both sides alike); the quiet makers' ws ack
    p99 over both noisy points against both alone points."""
    merged = {"alone": Histogram(), "with_noisy": Histogram()}
    points: dict[str, list[dict[str, Any]]] = {"alone": [], "with_noisy": []}
    for i, kind in enumerate(("alone", "with_noisy", "with_noisy", "alone")):
        point = await _measure(run, host, rate, args.duration, 100 + i,
                               noisy_rate=args.noisy_rate if kind == "with_noisy" else 0.0)
        merged[kind].merge(run.stats.ws_ack)
        points[kind].append(point)
    p99_alone = merged["alone"].summary()["p99"]
    p99_noisy = merged["with_noisy"].summary()["p99"]
    return {"rate": rate, "noisy_rate": args.noisy_rate, "points": points,
            "ws_ack_alone": merged["alone"].summary(), "ws_ack_with_noisy": merged["with_noisy"].summary(),
            "ws_ack_p99_alone_ms": p99_alone, "ws_ack_p99_with_noisy_ms": p99_noisy,
            "noisy_ack_p99_ms": max((p.get("noisy_ack", {}).get("p99") or 0.0) for p in points["with_noisy"]),
            "ratio": round(p99_noisy / p99_alone, 2) if p99_alone and p99_noisy else None}


async def drive(host: Host, args: argparse.Namespace, rates: list[float], mix: dict[str, float]) -> dict[str, Any]:
    keys = json.loads(host.keys.read_text())
    run = Run(host.base_url, keys, makers=args.makers, investors=args.investors, subscribers=args.subscribers,
              mix=mix, seed=args.seed, noisy=args.noisy_rate > 0)
    points: list[dict[str, Any]] = []
    stopped = first_saturated = None
    neighbour = None
    past = 0
    try:
        await run.open()
        meter = CpuMeter(host.proc.pid)
        await asyncio.sleep(IDLE_S)
        idle = meter.used()  # what the venue burns with no orders (watcher polls, flush loops)
        for index, rate in enumerate(rates):
            point = await _measure(run, host, rate, args.duration, index)
            points.append(point)
            why = point["saturated"]
            verdict = "OK" if point["consistency"]["ok"] else "FAILED"
            print(f"point {index + 1}/{len(rates)}: offered {rate:.0f}/s achieved {point['achieved_per_s']:.0f}/s "
                  f"ws ack p99 {point['ws_ack']['p99']} ms, consistency {verdict}"
                  + (f"; saturated ({why})" if why else ""), file=sys.stderr, flush=True)
            if why:
                past += 1
                first_saturated = first_saturated or f"saturated at {rate:.0f} orders/s: {why}"
                if past > args.past_saturation:
                    stopped = first_saturated
                    break
        if args.noisy_rate > 0:
            neighbour = await _noisy_neighbour(run, host, args.noisy_base or rates[0], args)
            print(f"noisy neighbour: quiet ws ack p99 {neighbour['ws_ack_p99_alone_ms']} ms alone, "
                  f"{neighbour['ws_ack_p99_with_noisy_ms']} ms next to {args.noisy_rate:g} orders/s "
                  f"(ratio {neighbour['ratio']})", file=sys.stderr, flush=True)
    finally:
        await run.close()
    checked = points + ([*neighbour["points"]["alone"], *neighbour["points"]["with_noisy"]] if neighbour else [])
    return {"mode": "openloop", "chain": args.chain, "cores": os.cpu_count(), "makers": args.makers,
            "investors": args.investors, "subscribers": args.subscribers, "mix": mix, "points": points,
            "stopped": stopped, "noisy_neighbour": neighbour, "idle_cpu": idle,
            "consistency_ok": all(p["consistency"]["ok"] for p in checked)}


def _ms(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def table(points: list[dict[str, Any]]) -> str:
    lines = ["| offered /s | achieved /s | ws ack p50 / p90 / p99 / p99.9 / max ms | REST p50 / p99 ms | "
             "md fan-out p50 / p99 ms | gen lag p99 ms | errors | rejections | venue cores, CPU ms/order | "
             "load avg | consistency |",
             "|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---|"]
    for p in points:
        ws, rest, md = p["ws_ack"], p["rest"], p["md_fanout"]
        errors = ", ".join(f"{k} {v}" for k, v in sorted(p["errors"].items())) or "0"
        cpu = p.get("cpu") or {}
        cores = f"{cpu['venue_cpu_s'] / cpu['wall_s']:.2f}" if cpu.get("wall_s") else "-"
        lines.append(
            f"| {p['offered_per_s']:.0f} | {p['achieved_per_s']:.0f} | "
            f"{_ms(ws['p50'])} / {_ms(ws['p90'])} / {_ms(ws['p99'])} / {_ms(ws['p99.9'])} / {_ms(ws['max'])} | "
            f"{_ms(rest['p50'])} / {_ms(rest['p99'])} | {_ms(md['p50'])} / {_ms(md['p99'])} | "
            f"{_ms(p['gen_lag']['p99'])} | {errors} | {sum(p['rejections'].values())} | "
            f"{cores}, {_ms(p.get('venue_cpu_ms_per_order'))} | "
            f"{p.get('loadavg_1m_before', '-')} | {'OK' if p['consistency']['ok'] else 'FAILED'} |")
    return "\n".join(lines)


def neighbour_table(n: dict[str, Any]) -> str:
    alone, noisy = n["ws_ack_alone"], n["ws_ack_with_noisy"]
    return "\n".join([
        f"| noisy neighbour at {n['rate']:.0f} orders/s (A B B A, 2 points each) | quiet makers' ws ack p50 / p99 ms "
        "| noisy maker's ack p99 ms |",
        "|---|---:|---:|",
        f"| alone | {_ms(alone['p50'])} / {_ms(alone['p99'])} | - |",
        f"| next to a maker pipelining {n['noisy_rate']:g} orders/s | {_ms(noisy['p50'])} / {_ms(noisy['p99'])} "
        f"| {_ms(n['noisy_ack_p99_ms'])} |",
        f"| ratio (goal <= 1.5x) | {n['ratio']}x | |",
    ])


def run(args: argparse.Namespace) -> dict[str, Any]:
    rates = parse_rates(args.rates)
    mix = parse_mix(args.mix)
    if args.makers < 1 or args.investors < 1 or args.subscribers < 0 or args.duration <= 0:
        raise LoadTestError("--makers and --investors must be >= 1, --subscribers >= 0, --duration > 0")
    with tempfile.TemporaryDirectory(prefix="omn-openloop-") as tmp:
        host = Host(Path(tmp), makers=args.makers + (args.noisy_rate > 0), investors=args.investors, chain=args.chain,
                    settle_timeout=args.settle_timeout, profile=args.host_profile)
        try:
            return asyncio.run(drive(host, args, rates, mix))
        finally:
            host.stop()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default=DEFAULT_RATES, help="offered orders/s, one load point each")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per load point")
    parser.add_argument("--mix", default=DEFAULT_MIX,
                        help="fractions of the rate per kind (quote, ioc, passive, cancel)")
    parser.add_argument("--makers", type=int, default=4, help="market makers (one websocket each)")
    parser.add_argument("--investors", type=int, default=8, help="investors (signed REST, a fills websocket each)")
    parser.add_argument("--subscribers", type=int, default=4, help="market-data subscribers (book channel)")
    parser.add_argument("--chain", default="inprocess", help="inprocess | anvil")
    parser.add_argument("--settle-timeout", type=float, default=300.0)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--noisy-rate", type=float, default=0.0,
                        help="also run one point without and one with a noisy maker pipelining this many orders/s "
                             "(the gateway's default per-key limit is 100/s); 0: off")
    parser.add_argument("--noisy-base", type=float, default=0.0,
                        help="offered orders/s of the noisy-neighbour points (default: the first rate)")
    parser.add_argument("--past-saturation", type=int, default=0,
                        help="load points still run after the first saturated one (to show the knee)")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    parser.add_argument("--host-profile", type=Path, help="cProfile the venue's event loop, write the stats here")
    return parser


def summary(results: dict[str, Any], args: argparse.Namespace) -> tuple[list[str], bool]:
    idle = results["idle_cpu"]
    lines = [table(results["points"]), "",
             f"venue idle (no orders, {idle['wall_s']:.0f} s): {idle['venue_cpu_s'] / idle['wall_s']:.2f} cores; "
             f"chain (anvil) {idle['chain_cpu_s'] / idle['wall_s']:.2f}; load average {os.getloadavg()[0]:.1f}"]
    if results["noisy_neighbour"]:
        lines += ["", neighbour_table(results["noisy_neighbour"])]
    if results["stopped"]:
        lines += ["", f"stopped: {results['stopped']}"]
    lines += [f"  point {i}: {problem}" for i, p in enumerate(results["points"], 1)
              for problem in p["consistency"]["problems"]]
    lines.append(f"consistency after every point: {'OK' if results['consistency_ok'] else 'FAILED'}")
    return lines, bool(results["consistency_ok"])


def main(argv: list[str] | None = None) -> int:
    return cli.main(build_parser(), run, summary, argv)


if __name__ == "__main__":
    sys.exit(main())
