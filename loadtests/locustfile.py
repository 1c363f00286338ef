"""Locust users for the venue: websocket market makers, REST investors, market-data subscribers.

Configured by environment (``loadtests.run`` sets it): ``LOADTEST_KEYS`` (key file written by
``loadtests.host``), ``LOADTEST_OBSERVED`` (where to write what the clients saw), ``LOADTEST_MAKERS``
and ``LOADTEST_SUBSCRIBERS`` (fixed user counts; every other user is an investor).

Request names in locust's statistics: ``WS new_order|amend|mass_cancel`` (ack latency = send ->
reply on the maker's connection), ``POST /v1/orders ioc|passive``, ``POST /v1/orders/cancel``
(REST round trip), ``MD book delta`` (fan-out latency = the sequencer's timestamp on the event ->
arrival at a subscriber; same host, same clock). Venue refusals that are part of normal trading
(post-only would cross, amending an order that has just been filled, ...) are counted as
rejections, not failures; failures are transport errors, server errors and throttling.

Every fill a participant sees on its private ``fills`` channel, and every fill in a REST order
ack, is recorded and written to ``LOADTEST_OBSERVED`` when the test stops, for ``loadtests.check``.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import threading
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

from locust import FastHttpUser, User, between, constant_pacing, events, task
from locust.env import Environment
from websocket import WebSocket, WebSocketConnectionClosedException, WebSocketTimeoutException, create_connection

from gateway.errors import http_status
from venueclient.signing import HEADER_KEY, HEADER_SIGNATURE, HEADER_TIMESTAMP, login_payload, sign, signing_payload

_KEYS_FILE = os.environ.get("LOADTEST_KEYS")
_KEYS: dict[str, Any] = json.loads(Path(_KEYS_FILE).read_text()) if _KEYS_FILE else {}
SYMBOL = str(_KEYS.get("symbol", "OMN-2029A"))
INCREMENT = Decimal("0.01")
FAIR_START = Decimal("45000.00")


def _refusal(code: str) -> bool:
    """A venue refusal that happens in normal trading (amending an order that was just filled, a
    post-only quote that would cross, funding): counted, not a failure. The gateway's own mapping
    decides: unknown things 404 and venue refusals 422; input errors, auth, throttling, server errors
    are failures."""
    return http_status(code) in (404, 422)


_lock = threading.Lock()
_observed: dict[str, Any] = {"stream_fills": [], "ack_fills": [], "rejections": Counter(), "failures": Counter(),
                             "md_messages": 0, "md_gaps": 0, "md_crossed": 0}
_next = {"maker": itertools.count(1), "investor": itertools.count(1)}


class _Market:
    """A shared fair value: makers quote around it, investors cross it."""

    fair = FAIR_START
    rng = random.Random(7)

    @classmethod
    def drift(cls) -> Decimal:
        with _lock:
            step = Decimal(1 + cls.rng.gauss(0, 0.0005))
            cls.fair = _tick(cls.fair * step)
            return cls.fair


def _tick(value: Decimal) -> Decimal:
    return (value / INCREMENT).to_integral_value() * INCREMENT


def _record(kind: str, item: Any) -> None:
    with _lock:
        _observed[kind].append(item)


def _count(kind: str, code: str) -> None:
    with _lock:
        _observed[kind][code] += 1


def _fill_key(participant: str, fill: dict[str, Any]) -> dict[str, Any]:
    return {"participant": participant, "trade_id": fill["trade_id"], "side": fill["side"],
            "order_id": fill["order_id"], "price": fill["price"], "qty": fill["qty"]}


def _fire(env: Environment, kind: str, name: str, started: float, exc: Exception | None, length: int = 0) -> None:
    env.events.request.fire(  # type: ignore[no-untyped-call]
        request_type=kind, name=name, response_time=(time.perf_counter() - started) * 1000,
        response_length=length, exception=exc, context={})


class VenueError(Exception):
    """A failure as locust counts it (the code is the venue's, or TRANSPORT)."""


class WsSession:
    """One logged-in websocket: sends requests, waits for their replies, records fills on the way."""

    def __init__(self, base_url: str, participant: str, key_id: str, private_key: str,
                 *, cancel_on_disconnect: bool = True) -> None:
        self.participant = participant
        # websocket-client: plain blocking sockets, which gevent patches (the asyncio and threaded
        # websocket clients do not mix with gevent)
        self.conn: WebSocket = create_connection(base_url.replace("http", "ws", 1) + "/v1/ws", timeout=10)
        self._ids = itertools.count(1)
        self.on_message: Any = None
        welcome = json.loads(self.conn.recv())
        ts = int(time.time() * 1000)
        signature = sign(private_key, login_payload(ts, welcome["nonce"]))
        reply = self.request("login", key_id=key_id, ts=ts, signature=signature,
                             cancel_on_disconnect=cancel_on_disconnect)
        if not reply["ok"]:
            raise VenueError(f"login refused: {reply['error']}")

    def request(self, op: str, **fields: Any) -> dict[str, Any]:
        rid = next(self._ids)
        self.conn.send(json.dumps({"op": op, "req_id": rid, **fields}))
        self.conn.settimeout(30)
        while True:
            msg = self.handle(self.conn.recv())
            if msg.get("req_id") == rid and msg.get("op") == op:
                return msg

    def receive(self, timeout: float) -> dict[str, Any] | None:
        """Handle the next message; None when nothing came within ``timeout``."""
        self.conn.settimeout(timeout)
        try:
            return self.handle(self.conn.recv())
        except WebSocketTimeoutException:
            return None

    def handle(self, text: str | bytes) -> dict[str, Any]:
        msg: dict[str, Any] = json.loads(text)
        if msg.get("channel") == "fills":
            _record("stream_fills", _fill_key(self.participant, msg))
        elif self.on_message is not None and "channel" in msg:
            self.on_message(msg)
        return msg

    def sync(self) -> None:
        """Return once everything the server queued for this connection before now has been read."""
        self.request("heartbeat")

    def close(self) -> None:
        self.conn.close()


def _host(user: User) -> str:
    if not user.host:
        raise VenueError("no --host given")
    return str(user.host)


def _account(kind: str, prefix: str) -> tuple[str, dict[str, str]]:
    participant = f"{prefix}-{next(_next[kind])}"
    return participant, _KEYS["keys"][participant]


class MarketMakerUser(User):
    """Two-sided quotes at three levels over one websocket (post-only), amended as the fair value
    drifts; one round in twenty pulls everything with a mass cancel."""

    fixed_count = int(os.environ.get("LOADTEST_MAKERS", "1"))
    wait_time = constant_pacing(0.25)
    levels = 3

    def on_start(self) -> None:
        self.participant, key = _account("maker", "mm")
        self.rng = random.Random(self.participant)
        self.ws = WsSession(_host(self), self.participant, key["key_id"], key["private_key"])
        self.ws.request("subscribe", channel="fills")
        self.quotes: dict[tuple[str, int], int] = {}

    def _send(self, op: str, **fields: Any) -> dict[str, Any] | None:
        started = time.perf_counter()
        try:
            reply = self.ws.request(op, **fields)
        except (WebSocketConnectionClosedException, WebSocketTimeoutException, OSError) as exc:
            _count("failures", "TRANSPORT")
            _fire(self.environment, "WS", op, started, exc)
            raise
        if reply["ok"]:
            _fire(self.environment, "WS", op, started, None)
            return dict(reply["result"])
        code = reply["error"]["code"]
        if _refusal(code):
            _count("rejections", code)
            _fire(self.environment, "WS", op, started, None)
        else:
            _count("failures", code)
            _fire(self.environment, "WS", op, started, VenueError(code))
        return None

    @task
    def quote(self) -> None:
        fair = _Market.drift()
        if self.rng.random() < 0.05:
            self._send("mass_cancel", symbol=SYMBOL)
            self.quotes.clear()
            return
        for side in ("buy", "sell"):
            for level in range(self.levels):
                offset = Decimal(10 + 10 * level) / Decimal(10_000)
                price = _tick(fair * (1 - offset) if side == "buy" else fair * (1 + offset))
                qty = str(self.rng.randint(1, 5))
                order_id = self.quotes.get((side, level))
                if order_id is None:
                    ack = self._send("new_order", symbol=SYMBOL, side=side, qty=qty, price=str(price),
                                     post_only=True)
                    if ack is not None and ack.get("status") in ("open", "partially_filled"):
                        self.quotes[(side, level)] = int(ack["order_id"])
                else:
                    ack = self._send("amend", order_id=order_id, price=str(price), qty=qty)
                    if ack is None or ack.get("status") not in ("open", "partially_filled"):
                        self.quotes.pop((side, level), None)

    def on_stop(self) -> None:
        ws = getattr(self, "ws", None)
        if ws is None:
            return
        try:
            ws.request("mass_cancel", symbol=SYMBOL)
            ws.sync()  # every fill of this maker was pushed before the mass cancel's reply
        finally:
            ws.close()


class SubscriberUser(User):
    """Market data: the book channel; fan-out latency of every delta, gaps counted, and a local book
    (snapshot + deltas) that must never be crossed."""

    fixed_count = int(os.environ.get("LOADTEST_SUBSCRIBERS", "0"))
    wait_time = constant_pacing(0)

    def on_start(self) -> None:
        # any participant may read market data; subscribers borrow an investor's key (read only)
        participant = "inv-1"
        key = _KEYS["keys"][participant]
        self.ws = WsSession(_host(self), participant, key["key_id"], key["private_key"], cancel_on_disconnect=False)
        self.last_md = 0
        self.book: dict[str, dict[Decimal, str]] = {"buy": {}, "sell": {}}
        self.ws.on_message = self._on_message
        self.ws.request("subscribe", channel="book", symbol=SYMBOL)

    def _on_message(self, msg: dict[str, Any]) -> None:
        if msg.get("channel") != "book":
            return
        if msg.get("type") == "snapshot":
            self.last_md = int(msg.get("md_seq", 0))
            self.book = {"buy": {Decimal(lv["price"]): lv["qty"] for lv in msg["bids"]},
                         "sell": {Decimal(lv["price"]): lv["qty"] for lv in msg["asks"]}}
            return
        latency_ms = (time.time_ns() - int(msg["ts"])) / 1e6
        if int(msg["prev_md_seq"]) > self.last_md:
            with _lock:
                _observed["md_gaps"] += 1
        self.last_md = max(self.last_md, int(msg["md_seq"]))
        levels = self.book[msg["side"]]
        if Decimal(msg["qty"]):
            levels[Decimal(msg["price"])] = msg["qty"]
        else:
            levels.pop(Decimal(msg["price"]), None)
        bids, asks = self.book["buy"], self.book["sell"]
        crossed = bool(bids and asks and max(bids) >= min(asks))
        with _lock:
            _observed["md_messages"] += 1
            _observed["md_crossed"] += crossed
        self.environment.events.request.fire(request_type="MD", name="book delta", response_time=latency_ms,
                                             response_length=0, exception=None, context={})

    @task
    def read(self) -> None:
        self.ws.receive(1.0)

    def on_stop(self) -> None:
        ws = getattr(self, "ws", None)
        if ws is not None:
            ws.close()


class InvestorUser(FastHttpUser):
    """REST: mostly marketable IOC limits across the makers' quotes, sometimes a passive GTC limit
    that is cancelled again. A websocket listens to the participant's own fills."""

    weight = 1
    wait_time = between(0.2, 0.6)

    def on_start(self) -> None:
        self.participant, key = _account("investor", "inv")
        self.key_id, self.private_key = key["key_id"], key["private_key"]
        self.rng = random.Random(self.participant)
        self.coids = itertools.count(1)
        self.listener = WsSession(_host(self), self.participant, self.key_id, self.private_key,
                                  cancel_on_disconnect=False)
        self.listener.request("subscribe", channel="fills")
        self._stop = False
        self._reader = threading.Thread(target=self._listen, daemon=True)
        self._reader.start()
        self._last_ts = 0

    def _listen(self) -> None:
        while not self._stop:
            try:
                self.listener.receive(0.5)
            except (WebSocketConnectionClosedException, OSError):
                return

    def _headers(self, method: str, path: str, body: bytes) -> dict[str, str]:
        ts = max(int(time.time() * 1000), self._last_ts + 1)
        self._last_ts = ts
        return {HEADER_KEY: self.key_id, HEADER_TIMESTAMP: str(ts),
                HEADER_SIGNATURE: sign(self.private_key, signing_payload(ts, method, path, body)),
                "Content-Type": "application/json"}

    def _post(self, path: str, payload: dict[str, Any], name: str) -> dict[str, Any] | None:
        body = json.dumps(payload).encode()
        with self.client.post(path, data=body.decode(), headers=self._headers("POST", path, body), name=name,
                              catch_response=True) as resp:
            status = resp.status_code
            data: dict[str, Any] = {}
            try:
                data = resp.json() if resp.content else {}
            except ValueError:
                data = {}
            if status == 200:
                resp.success()
                return data
            code = str(data.get("error", {}).get("code", f"HTTP_{status}")) if isinstance(data, dict) else str(status)
            if status in (404, 422) and _refusal(code):
                _count("rejections", code)
                resp.success()
            else:
                _count("failures", code)
                resp.failure(code)
            return None

    def _coid(self) -> str:
        return f"{self.participant}-{os.getpid()}-{next(self.coids)}"

    @task(4)
    def take(self) -> None:
        side = self.rng.choice(("buy", "sell"))
        fair = _Market.fair
        price = _tick(fair * Decimal("1.003") if side == "buy" else fair * Decimal("0.997"))
        ack = self._post("/v1/orders", {"symbol": SYMBOL, "side": side, "qty": str(self.rng.randint(1, 3)),
                                        "price": str(price), "tif": "ioc", "client_order_id": self._coid()},
                         "POST /v1/orders ioc")
        for fill in (ack or {}).get("fills", []):
            _record("ack_fills", _fill_key(self.participant, fill))

    @task(1)
    def rest_and_cancel(self) -> None:
        side = self.rng.choice(("buy", "sell"))
        fair = _Market.fair
        price = _tick(fair * Decimal("0.99") if side == "buy" else fair * Decimal("1.01"))
        ack = self._post("/v1/orders", {"symbol": SYMBOL, "side": side, "qty": "1", "price": str(price),
                                        "client_order_id": self._coid()}, "POST /v1/orders passive")
        if ack is not None and ack.get("status") in ("open", "partially_filled"):
            self._post("/v1/orders/cancel", {"order_id": ack["order_id"]}, "POST /v1/orders/cancel")

    def on_stop(self) -> None:
        if not hasattr(self, "listener"):
            return
        try:
            self._post("/v1/orders/mass-cancel", {"symbol": SYMBOL}, "POST /v1/orders/mass-cancel")
            self._stop = True
            self._reader.join(timeout=5)
            self.listener.sync()  # fills are pushed before the REST reply that caused them
        finally:
            self.listener.close()


@events.test_stop.add_listener  # type: ignore[untyped-decorator]
def _write_observed(environment: Environment, **_: Any) -> None:
    path = os.environ.get("LOADTEST_OBSERVED")
    if not path:
        return
    with _lock:
        data = {**_observed, "rejections": dict(_observed["rejections"]), "failures": dict(_observed["failures"])}
    with open(path, "w") as fh:
        json.dump(data, fh)
