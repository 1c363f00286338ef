"""The gateway under abuse (issue 13): each test reproduces one way a client could hurt the venue
or other clients, against a live server on loopback. Bounded loops; assertions on behaviour
(close codes, counters, bounded queues, log lines), never on elapsed time."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import uvicorn
import websockets
from fastapi import FastAPI

from engine import NewOrder, Side
from gateway import GatewayConfig, create_app, metrics
from gateway.guards import guards_of
from gateway.server import uvicorn_options
from tests.gateway.conftest import client
from tests.gateway.fakes import FakeVenue, Keyring, serve
from venueclient import VenueClient
from venueclient.signing import HEADER_KEY, HEADER_SIGNATURE, HEADER_TIMESTAMP, login_payload, sign, signing_payload

# ---------------------------------------------------------------- helpers


@contextlib.asynccontextmanager
async def serve_guarded(app: FastAPI) -> AsyncIterator[tuple[str, int]]:
    """Like ``fakes.serve`` but with the venue's server settings (``gateway.server.uvicorn_options``)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=2,
                                           **uvicorn_options(app)))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{port}", port
    finally:
        server.should_exit = True
        await task
        sock.close()


def _ws_url(url: str) -> str:
    return "ws" + url[4:] + "/v1/ws"


async def _raw(url: str, **kw: Any) -> tuple[Any, dict[str, Any]]:
    conn = await websockets.connect(_ws_url(url), **kw)
    welcome = json.loads(await conn.recv())
    return conn, welcome


def _login_msg(key: Keyring, nonce: str) -> str:
    ts = time.time_ns() // 1_000_000
    return json.dumps({"op": "login", "req_id": "login", "key_id": key.key_id, "ts": ts,
                       "signature": sign(key.private_key, login_payload(ts, nonce))})


async def _logged_in(url: str, key: Keyring, **kw: Any) -> Any:
    conn, welcome = await _raw(url, **kw)
    await conn.send(_login_msg(key, welcome["nonce"]))
    reply = json.loads(await asyncio.wait_for(conn.recv(), 5))
    assert reply["ok"], reply
    return conn


async def _closed_with(conn: Any, max_messages: int = 100_000) -> tuple[int | None, str | None]:
    """Reads (bounded) until the server closes; returns its close code and reason."""
    try:
        for _ in range(max_messages):
            await asyncio.wait_for(conn.recv(), 10)
    except websockets.ConnectionClosed as closed:
        return (closed.rcvd.code, closed.rcvd.reason) if closed.rcvd is not None else (None, None)
    raise AssertionError("the server did not close the connection")


def _signed_headers(key: Keyring, method: str, target: str, body: bytes, *, good: bool = True) -> dict[str, str]:
    ts = time.time_ns() // 1_000_000
    signature = sign(key.private_key, signing_payload(ts, method, target, body))
    if not good:
        signature = base64.b64encode(b"\x00" * 64).decode()
    return {HEADER_KEY: key.key_id, HEADER_TIMESTAMP: str(ts), HEADER_SIGNATURE: signature,
            "content-type": "application/json"}


async def _deep_book(venue: FakeVenue, levels: int) -> None:
    """``levels`` resting sell levels on OMN-A (the snapshot then weighs ~60 bytes per level)."""
    for i in range(levels):
        outcome = await venue.submit("bob", NewOrder(ts=0, participant="bob", symbol="OMN-A", side=Side.SELL, qty=1,
                                                     price=1_000_000 + i * 1_000, client_order_id=f"deep-{i}"))
        assert outcome.result is not None and outcome.result.code.name == "OK", outcome


# ---------------------------------------------------------------- 1. re-subscribe storm


async def test_book_snapshot_is_built_once_per_book_version(venue: FakeVenue, keys: dict[str, Keyring]) -> None:
    """Reproduces: every subscribe built a full-depth snapshot (40 subscribes = 40 full-depth l2 reads)."""
    full_depth_reads = 0
    l2 = venue.l2

    def counting_l2(symbol: str, depth: int | None = None) -> Any:
        nonlocal full_depth_reads
        if depth is None:
            full_depth_reads += 1
        return l2(symbol, depth)

    venue.l2 = counting_l2  # type: ignore[method-assign]
    await _deep_book(venue, 50)
    app = create_app(venue, config=GatewayConfig(ws_subscribe_per_s=1000, ws_subscribe_burst=1000))
    async with serve(app) as url:
        conn = await _logged_in(url, keys["alice"])
        for i in range(40):
            await conn.send(json.dumps({"op": "subscribe", "req_id": i, "channel": "book", "symbol": "OMN-A"}))
        snapshots = []
        for _ in range(200):
            msg = json.loads(await asyncio.wait_for(conn.recv(), 5))
            if msg.get("type") == "snapshot":
                snapshots.append(msg)
                if len(snapshots) == 40:
                    break
        assert len(snapshots) == 40 and all(s == snapshots[0] for s in snapshots)
        assert full_depth_reads == 1
        async with client(url, keys["alice"]) as alice:  # a new book version: the next subscriber sees it
            await alice.place("OMN-A", "buy", "1", "9")
        await conn.send(json.dumps({"op": "subscribe", "req_id": "again", "channel": "book", "symbol": "OMN-A"}))
        for _ in range(50):
            msg = json.loads(await asyncio.wait_for(conn.recv(), 5))
            if msg.get("type") == "snapshot":
                assert msg["bids"] == [{"price": "9.00", "qty": "1.0", "count": 1}] or msg["bids"][0]["price"] == "9.00"
                break
        assert full_depth_reads == 2
        await conn.close()


async def test_subscribe_storm_is_rate_limited(url: str, keys: dict[str, Keyring]) -> None:
    """Reproduces: ~190 subscribes a second were all served."""
    before = metrics.abuse_count("subscribe_rate_limited")
    conn = await _logged_in(url, keys["alice"])
    codes = []
    for i in range(30):
        await conn.send(json.dumps({"op": "subscribe", "req_id": i, "channel": "status"}))
    for _ in range(200):
        msg = json.loads(await asyncio.wait_for(conn.recv(), 5))
        if msg.get("op") == "subscribe":
            codes.append("ok" if msg["ok"] else msg["error"]["code"])
            if len(codes) == 30:
                break
    assert codes[:20] == ["ok"] * 20  # the default burst
    assert "SUBSCRIBE_RATE_LIMITED" in codes[20:]
    assert metrics.abuse_count("subscribe_rate_limited") > before
    await conn.close()


async def test_subscriber_that_does_not_read_is_cut_off_by_bytes(venue: FakeVenue, keys: dict[str, Keyring]) -> None:
    """Reproduces: a session that subscribes and never reads grew its queue without a byte bound
    (10,000 messages of a full-depth snapshot each); other clients waited. Now its queue stops at
    ``ws_queue_max_bytes``, it is closed with 4009 SLOW_CONSUMER, and another client is served."""
    await _deep_book(venue, 1500)  # ~90 KB per snapshot
    bound = 1024 * 1024
    app = create_app(venue, config=GatewayConfig(ws_subscribe_per_s=10_000, ws_subscribe_burst=10_000,
                                                 rate_per_s=10_000, rate_burst=10_000, ws_rate_per_s=10_000,
                                                 ws_rate_burst=10_000, ws_queue_max_bytes=bound))
    sessions: list[Any] = []
    from gateway import ws as ws_module

    original = ws_module.Session.__init__

    def remember(self: Any, *args: Any) -> None:
        original(self, *args)
        sessions.append(self)

    ws_module.Session.__init__ = remember  # type: ignore[method-assign,assignment]
    try:
        async with serve(app) as url:
            before = metrics.abuse_count("slow_consumer")
            hog = await _logged_in(url, keys["alice"], max_queue=1, max_size=2**20)
            for i in range(400):  # ~36 MB of snapshots asked for, never read
                await hog.send(json.dumps({"op": "subscribe", "req_id": i, "channel": "book", "symbol": "OMN-A"}))
            async with client(url, keys["bob"]) as bob:  # another client is served meanwhile
                assert (await bob.book("OMN-A"))["asks"]
            assert await _closed_with(hog) == (4009, "SLOW_CONSUMER")
            assert metrics.abuse_count("slow_consumer") == before + 1
            hog_session = sessions[0]
            assert hog_session.max_queued_bytes <= bound
    finally:
        ws_module.Session.__init__ = original  # type: ignore[method-assign]


# ---------------------------------------------------------------- 2. oversized unauthenticated messages


async def test_oversized_frame_is_refused_from_its_header(venue: FakeVenue) -> None:
    """Reproduces: a 12 MiB unauthenticated message was read in full before the 64 KiB check.
    Here only the frame header (declaring 12 MiB) is sent: the server must close with 1009
    without waiting for the payload (with uvicorn's default 16 MiB it waits for it)."""
    app = create_app(venue, config=GatewayConfig())
    async with serve_guarded(app) as (_, port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        key = base64.b64encode(b"0123456789abcdef").decode()
        writer.write((f"GET /v1/ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 101")
        size = 12 * 1024 * 1024
        writer.write(bytes([0x81, 0x80 | 127]) + size.to_bytes(8, "big") + b"\x00\x00\x00\x00" + b"x" * 1024)
        await writer.drain()
        data = b""
        for _ in range(100):  # frames: the welcome, then the close
            chunk = await asyncio.wait_for(reader.read(65536), 5)
            if not chunk:
                break
            data += chunk
            if b"\x88" in data:
                break
        close_at = data.index(b"\x88")
        code = int.from_bytes(data[close_at + 2:close_at + 4], "big")
        assert code == 1009
        writer.close()


async def test_oversized_messages_count_against_the_pre_login_limit(venue: FakeVenue) -> None:
    """Reproduces: oversized messages got MESSAGE_TOO_LARGE each and never closed the socket."""
    app = create_app(venue, config=GatewayConfig(max_ws_message_bytes=1000))
    async with serve(app) as url:
        conn, _ = await _raw(url)
        for _ in range(40):
            with contextlib.suppress(websockets.ConnectionClosed):
                await conn.send(json.dumps({"op": "login", "pad": "x" * 2000}))
        assert await _closed_with(conn) == (4001, "TOO_MANY_FRAMES_BEFORE_LOGIN")


# ---------------------------------------------------------------- 3. pre-login heartbeats


async def test_pre_login_heartbeats_do_not_extend_the_login_timeout(venue: FakeVenue) -> None:
    """Reproduces: a socket that never logs in but sends heartbeats stayed open for ever."""
    app = create_app(venue, config=GatewayConfig(login_timeout_s=0.5))
    async with serve(app) as url:
        conn, _ = await _raw(url)
        closed: websockets.ConnectionClosed | None = None
        for _ in range(15):  # 15 x 0.1 s: three times the login timeout, fewer frames than the pre-login limit
            try:
                await conn.send(json.dumps({"op": "heartbeat"}))
                await asyncio.wait_for(conn.recv(), 5)
                await asyncio.sleep(0.1)
            except websockets.ConnectionClosed as exc:
                closed = exc
                break
        assert closed is not None, "still open after three login timeouts of heartbeats"
        assert closed.rcvd is not None and (closed.rcvd.code, closed.rcvd.reason) == (4001, "LOGIN_TIMEOUT")


# ---------------------------------------------------------------- 4. limits per address, per connection; quota


async def test_bad_signatures_are_limited_per_source_address(venue: FakeVenue, keys: dict[str, Keyring]) -> None:
    """Reproduces: requests with bad signatures were never limited (each cost a signature check)."""
    app = create_app(venue, config=GatewayConfig(address_rate_per_s=0.5, address_rate_burst=5))
    async with serve(app) as url, httpx.AsyncClient(base_url=url) as http:
        before = metrics.abuse_count("rate_limited_address")
        statuses = []
        for _ in range(12):
            r = await http.get("/v1/orders", headers=_signed_headers(keys["alice"], "GET", "/v1/orders", b"",
                                                                      good=False))
            statuses.append((r.status_code, r.json()["error"]["code"]))
        assert statuses[:5] == [(401, "BAD_SIGNATURE")] * 5
        assert statuses[5:] == [(429, "RATE_LIMITED")] * 7
        assert metrics.abuse_count("rate_limited_address") == before + 7


async def test_rest_replies_carry_the_remaining_quota(venue: FakeVenue, keys: dict[str, Keyring]) -> None:
    app = create_app(venue, config=GatewayConfig(rate_per_s=0.001, rate_burst=3))
    async with serve(app) as url, httpx.AsyncClient(base_url=url) as http:
        seen = []
        for _ in range(4):
            r = await http.get("/v1/orders", headers=_signed_headers(keys["alice"], "GET", "/v1/orders", b""))
            seen.append((r.status_code, r.headers.get("X-RateLimit-Limit"), r.headers.get("X-RateLimit-Remaining")))
            await asyncio.sleep(0.002)  # distinct timestamps: identical signatures would be replays
        assert seen[:3] == [(200, "3", "2"), (200, "3", "1"), (200, "3", "0")]
        assert seen[3][0] == 429 and seen[3][2] == "0"


async def test_per_connection_limit_and_remaining_in_ws_replies(venue: FakeVenue, keys: dict[str, Keyring]) -> None:
    """One connection at its limit is refused while another connection of the same key is not."""
    app = create_app(venue, config=GatewayConfig(ws_rate_per_s=0.001, ws_rate_burst=3, rate_per_s=1000,
                                                 rate_burst=1000))
    async with serve(app) as url:
        busy = await _logged_in(url, keys["alice"])
        other = await _logged_in(url, keys["alice"])
        replies = []
        for i in range(4):
            await busy.send(json.dumps({"op": "heartbeat", "req_id": i}))
            replies.append(json.loads(await asyncio.wait_for(busy.recv(), 5)))
        assert [r["remaining"] for r in replies[:3]] == [2, 1, 0]
        assert replies[3]["error"]["code"] == "RATE_LIMITED" and replies[3]["remaining"] == 0
        await other.send(json.dumps({"op": "heartbeat", "req_id": "other"}))
        assert json.loads(await asyncio.wait_for(other.recv(), 5))["ok"]
        await busy.close()
        await other.close()


# ---------------------------------------------------------------- 5. slowloris


async def test_slow_headers_time_out_and_connections_are_capped_per_address(venue: FakeVenue) -> None:
    """Reproduces: connections that trickle their headers were held for ever, without a cap."""
    app = create_app(venue, config=GatewayConfig(header_timeout_s=0.5, max_connections_per_address=5))
    async with serve_guarded(app) as (url, port):
        before_cap = metrics.abuse_count("connection_cap")
        before_timeout = metrics.abuse_count("header_timeout")
        conns = []
        for _ in range(8):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n")  # headers never finished
            await writer.drain()
            conns.append((reader, writer))
        closed = 0
        for reader, _ in conns:  # each read returns EOF: 3 at once (the cap), 5 after the header timeout
            assert await asyncio.wait_for(reader.read(), 10) == b""
            closed += 1
        assert closed == 8
        assert metrics.abuse_count("connection_cap") == before_cap + 3
        assert metrics.abuse_count("header_timeout") == before_timeout + 5
        assert guards_of(app).connections.open("127.0.0.1") == 0
        async with httpx.AsyncClient(base_url=url) as http:  # the slots are free again
            assert (await http.get("/health/live")).status_code == 200
        for _, writer in conns:
            writer.close()


async def test_slow_body_times_out_with_408(venue: FakeVenue) -> None:
    app = create_app(venue, config=GatewayConfig(body_timeout_s=0.5))
    async with serve_guarded(app) as (_, port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST /v1/orders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 100\r\n\r\n{\"sym")
        await writer.drain()
        response = await asyncio.wait_for(reader.read(), 10)
        assert response.startswith(b"HTTP/1.1 408")
        assert b"REQUEST_TIMEOUT" in response
        writer.close()


async def test_websockets_count_against_the_per_address_cap(venue: FakeVenue, keys: dict[str, Keyring]) -> None:
    app = create_app(venue, config=GatewayConfig(max_connections_per_address=3))
    async with serve_guarded(app) as (url, _):
        conns = [await _logged_in(url, keys["alice"]) for _ in range(3)]
        with pytest.raises((websockets.InvalidHandshake, websockets.ConnectionClosed, OSError, TimeoutError)):
            await asyncio.wait_for(_raw(url), 5)
        assert guards_of(app).connections.open("127.0.0.1") == 3
        for conn in conns:
            await conn.close()
        for _ in range(100):  # bounded: the server sees the closes
            if guards_of(app).connections.open("127.0.0.1") == 0:
                break
            await asyncio.sleep(0.02)
        assert guards_of(app).connections.open("127.0.0.1") == 0
        extra, _ = await _raw(url)  # a slot is free again
        await extra.close()


# ---------------------------------------------------------------- 6. duplicate JSON keys


async def test_duplicate_json_keys_are_refused_on_rest(url: str, keys: dict[str, Keyring], venue: FakeVenue) -> None:
    """Reproduces: ``{"side": "buy", ..., "side": "sell"}`` was accepted as a sell (last one wins)."""
    body = b'{"symbol": "OMN-A", "side": "buy", "qty": "1", "price": "90", "side": "sell"}'
    async with httpx.AsyncClient(base_url=url) as http:
        r = await http.post("/v1/orders", content=body, headers=_signed_headers(keys["alice"], "POST", "/v1/orders",
                                                                                 body))
    assert r.status_code == 400 and r.json()["error"]["code"] == "DUPLICATE_JSON_KEY", r.text
    assert "side" in r.json()["error"]["message"]
    assert venue.open_orders("alice") == []


async def test_duplicate_json_keys_are_refused_on_the_websocket(url: str, keys: dict[str, Keyring],
                                                                venue: FakeVenue) -> None:
    conn = await _logged_in(url, keys["alice"])
    await conn.send('{"op": "new_order", "req_id": 7, "symbol": "OMN-A", "side": "buy", "qty": "1", '
                    '"price": "90", "side": "sell"}')
    reply = json.loads(await asyncio.wait_for(conn.recv(), 5))
    assert reply["error"]["code"] == "DUPLICATE_JSON_KEY", reply
    assert venue.open_orders("alice") == []
    await conn.close()


# ---------------------------------------------------------------- 7. refusals after the venue stops taking orders


class _DiskFull(FakeVenue):
    failing = False

    async def submit(self, participant: str, cmd: Any) -> Any:
        if self.failing:
            raise OSError(28, "No space left on device")
        return await super().submit(participant, cmd)


async def test_refused_orders_log_one_line_per_state_change(keys: dict[str, Keyring],
                                                            caplog: pytest.LogCaptureFixture) -> None:
    """Reproduces: every order refused after the journal failed logged a full traceback."""
    from tests.gateway.fakes import make_listing

    venue = _DiskFull([make_listing("OMN-A")], [k.api_key for k in keys.values()])
    app = create_app(venue, config=GatewayConfig(rate_per_s=1000, rate_burst=1000))
    before = metrics.refused_count("OSError")
    caplog.set_level(logging.INFO)
    async with serve(app) as url, client(url, keys["alice"]) as alice, httpx.AsyncClient(base_url=url) as http:
        assert (await http.get("/health/ready")).status_code == 200
        venue.failing = True
        stream = await alice.connect()
        codes = []
        for i in range(30):
            try:
                await stream.place("OMN-A", "buy", "1", str(50 + i))
            except Exception as exc:  # venueclient.ApiError
                codes.append(getattr(exc, "code", None))
        assert codes == ["VENUE_ERROR"] * 30
        ready = await http.get("/health/ready")
        assert ready.status_code == 503 and "No space left" in json.dumps(ready.json()["reasons"])
        venue.failing = False
        await stream.place("OMN-A", "buy", "1", "10")
        assert (await http.get("/health/ready")).status_code == 200
        venue.failing = True
        with contextlib.suppress(Exception):
            await stream.place("OMN-A", "buy", "1", "11")
        await stream.close()
    assert metrics.refused_count("OSError") == before + 31
    assert not [r for r in caplog.records if r.exc_info], "a refusal logged a traceback"
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 2  # refusing, (answering again: one warning), refusing again
    assert len([r for r in caplog.records if "answers commands again" in r.getMessage()]) == 1


# ---------------------------------------------------------------- health


async def test_health_live_and_ready(url: str, venue: FakeVenue) -> None:
    async with httpx.AsyncClient(base_url=url) as http:
        assert (await http.get("/health")).json() == {"status": "ok"}
        assert (await http.get("/health/live")).json() == {"status": "live"}
        assert (await http.get("/health/ready")).json() == {"status": "ready"}


async def test_ready_reports_every_failing_check(venue: FakeVenue) -> None:
    app = create_app(venue)
    ready = guards_of(app).readiness
    backlog = [0]
    ready.add("store_backlog", lambda: None if backlog[0] <= 10 else f"store backlog {backlog[0]} (bound 10)")
    def broken() -> str | None:
        raise ZeroDivisionError

    ready.add("chain_watcher", broken)  # a broken check is a reason, not a 500
    async with serve(app) as url, httpx.AsyncClient(base_url=url) as http:
        r = await http.get("/health/ready")
        assert r.status_code == 503
        assert r.json()["reasons"] == [{"check": "chain_watcher", "reason": "check failed: ZeroDivisionError"}]
        backlog[0] = 11
        r = await http.get("/health/ready")
        assert [x["check"] for x in r.json()["reasons"]] == ["store_backlog", "chain_watcher"]
        assert (await http.get("/health/live")).status_code == 200


async def test_venue_client_still_works_with_the_guarded_server(venue: FakeVenue, keys: dict[str, Keyring]) -> None:
    app = create_app(venue)
    async with serve_guarded(app) as (url, _), VenueClient(url, keys["alice"].key_id,
                                                              keys["alice"].private_key) as alice:
        stream = await alice.connect()
        assert (await stream.place("OMN-A", "buy", "1", "90"))["status"] == "open"
        assert len(await alice.my_orders()) == 1
        await stream.close()


async def test_failed_logins_are_limited_per_address_and_good_ones_are_not(venue: FakeVenue,
                                                                            keys: dict[str, Keyring]) -> None:
    app = create_app(venue, config=GatewayConfig(address_rate_per_s=0.001, address_rate_burst=3))
    async with serve(app) as url:
        for _ in range(5):  # honest logins never spend the address's bucket
            conn = await _logged_in(url, keys["alice"])
            await conn.close()
        conn, _ = await _raw(url)
        codes = []
        for i in range(5):
            ts = time.time_ns() // 1_000_000
            await conn.send(json.dumps({"op": "login", "req_id": i, "key_id": keys["alice"].key_id, "ts": ts,
                                        "signature": base64.b64encode(b"\x01" * 64).decode()}))
            codes.append(json.loads(await asyncio.wait_for(conn.recv(), 5))["error"]["code"])
        assert codes == ["BAD_SIGNATURE"] * 3 + ["RATE_LIMITED"] * 2
        await conn.close()


async def test_a_client_that_keeps_sending_while_refused_is_closed(venue: FakeVenue, keys: dict[str, Keyring]) -> None:
    """Each refused message still costs a parse and a reply: a flood past the limit ends the connection."""
    app = create_app(venue, config=GatewayConfig(rate_per_s=0.001, rate_burst=5))
    before = metrics.abuse_count("rate_limit_disconnect")
    async with serve(app) as url:
        conn = await _logged_in(url, keys["alice"])
        for i in range(40):
            with contextlib.suppress(websockets.ConnectionClosed):
                await conn.send(json.dumps({"op": "heartbeat", "req_id": i}))
        assert await _closed_with(conn) == (4029, "RATE_LIMIT_EXCEEDED")
    assert metrics.abuse_count("rate_limit_disconnect") == before + 1


@pytest.mark.parametrize("enabled", [False, True])
async def test_websocket_compression_is_off_unless_configured(venue: FakeVenue, enabled: bool) -> None:
    """Issue 13: no per-message compression on order entry. A client offering permessage-deflate
    gets it only from a gateway configured with ``ws_compression`` (for market-data-heavy use)."""
    app = create_app(venue, config=GatewayConfig(ws_compression=enabled))
    async with serve_guarded(app) as (_, port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        key = base64.b64encode(b"0123456789abcdef").decode()
        writer.write((f"GET /v1/ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                      "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n").encode())
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        writer.close()
    assert head.startswith(b"HTTP/1.1 101")
    assert (b"permessage-deflate" in head.lower()) is enabled
