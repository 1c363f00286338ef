"""The operator websocket shares the trader websocket's framing (``gateway.framing``), so issue 13's
session defences apply to it too: the login deadline runs from connecting, failed logins are
limited per source address, and a client that does not read is closed by bytes queued."""

from __future__ import annotations

import base64
import contextlib
import time
from collections.abc import Callable, Iterator

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from engine import NewOrder, Side
from gateway import GatewayConfig, create_app, metrics
from gateway.operator import ConsoleAuth, operator_router
from tests.console.conftest import LiveServer
from tests.console.fakes import SYMBOL, FakeVenue
from tests.console.test_operator_api import Ws

MakeServer = Callable[[GatewayConfig], LiveServer]


@pytest.fixture
def make_server(venue: FakeVenue, console_auth: ConsoleAuth) -> Iterator[MakeServer]:
    servers: list[LiveServer] = []

    def make(config: GatewayConfig) -> LiveServer:
        app = create_app(venue, config=config, extra_routers=[operator_router(venue, console_auth=console_auth)])
        live = LiveServer(app)
        live.start()
        servers.append(live)
        return live

    yield make
    for live in servers:
        live.stop()


@contextlib.contextmanager
def _ws(server: LiveServer) -> Iterator[Ws]:
    with connect(f"ws://127.0.0.1:{server.port}/v1/operator/ws", open_timeout=5) as conn:
        yield Ws(conn)


def _close_of(ws: Ws, max_messages: int = 10_000) -> tuple[int | None, str | None]:
    try:
        for _ in range(max_messages):
            ws.conn.recv(timeout=10)
    except ConnectionClosed as closed:
        return (closed.rcvd.code, closed.rcvd.reason) if closed.rcvd is not None else (None, None)
    raise AssertionError("the server did not close the connection")


def test_operator_pre_login_heartbeats_do_not_extend_the_login_timeout(make_server: MakeServer) -> None:
    server = make_server(GatewayConfig(login_timeout_s=0.5))
    closed: ConnectionClosed | None = None
    with _ws(server) as ws:
        for i in range(15):  # 15 x 0.1 s: three login timeouts, fewer frames than the pre-login limit
            try:
                ws.send_json({"op": "heartbeat", "req_id": i})
                ws.receive_json()
                time.sleep(0.1)
            except ConnectionClosed as exc:
                closed = exc
                break
    assert closed is not None, "still open after three login timeouts of heartbeats"
    assert closed.rcvd is not None and (closed.rcvd.code, closed.rcvd.reason) == (4001, "LOGIN_TIMEOUT")


def test_operator_failed_logins_are_limited_per_address(make_server: MakeServer, venue: FakeVenue) -> None:
    server = make_server(GatewayConfig(address_rate_per_s=0.001, address_rate_burst=2))
    codes = []
    with _ws(server) as ws:
        for i in range(4):
            ws.send_json({"op": "login", "req_id": i, "key_id": "op-key", "ts": int(time.time() * 1000),
                          "signature": base64.b64encode(b"\x01" * 64).decode()})
            codes.append(ws.receive_json()["error"]["code"])
    assert codes == ["BAD_SIGNATURE"] * 2 + ["RATE_LIMITED"] * 2


def test_operator_session_that_does_not_read_is_cut_off_by_bytes(make_server: MakeServer, venue: FakeVenue,
                                                                  console_auth: ConsoleAuth) -> None:
    server = make_server(GatewayConfig(ws_queue_max_bytes=1024))
    before = metrics.abuse_count("slow_consumer")
    token = console_auth.exchange(console_auth.issue_login_code("ops-alice")).token
    with _ws(server) as ws:
        ws.send_json({"op": "login", "req_id": 1, "token": token})
        for i in range(20):  # trades and book changes: operator feed pushes well past 1 KiB
            for participant, side in (("alice", Side.SELL), ("bob", Side.BUY)):
                cmd = NewOrder(ts=0, participant=participant, symbol=SYMBOL, side=side, qty=1, price=10_000 + i)
                server.call(venue.submit(participant, cmd))
        assert _close_of(ws) == (4009, "SLOW_CONSUMER")
    assert metrics.abuse_count("slow_consumer") > before
