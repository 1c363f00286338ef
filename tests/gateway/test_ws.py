"""Websocket sessions against a live server: login, order entry, channels, heartbeats,
cancel-on-disconnect, isolation and protocol errors."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import websockets

from engine import MassCancel, NewOrder
from gateway import GatewayConfig, create_app
from gateway.ports import SettlementNotice, SettlementState
from tests.gateway.conftest import client
from tests.gateway.fakes import FakeVenue, Keyring, serve
from venueclient import ApiError, VenueClient, VenueStream
from venueclient.signing import login_payload, sign


@pytest.fixture
async def alice_ws(alice: VenueClient) -> AsyncIterator[VenueStream]:
    stream = await alice.connect()
    yield stream
    await stream.close()


@pytest.fixture
async def bob_ws(bob: VenueClient) -> AsyncIterator[VenueStream]:
    stream = await bob.connect()
    yield stream
    await stream.close()


async def _raw(url: str) -> tuple[Any, dict[str, Any]]:
    conn = await websockets.connect("ws" + url[4:] + "/v1/ws")
    welcome = json.loads(await conn.recv())
    return conn, welcome


async def _ask(conn: Any, msg: dict[str, Any] | str) -> dict[str, Any]:
    await conn.send(msg if isinstance(msg, str) else json.dumps(msg))
    reply: dict[str, Any] = json.loads(await asyncio.wait_for(conn.recv(), 5))
    return reply


def _login_msg(key: Keyring, nonce: str, ts: int | None = None, **extra: Any) -> dict[str, Any]:
    ts = ts or time.time_ns() // 1_000_000
    return {"op": "login", "req_id": 1, "key_id": key.key_id, "ts": ts,
            "signature": sign(key.private_key, login_payload(ts, nonce)), **extra}


async def test_login_and_order_round_trip(alice_ws: VenueStream, bob_ws: VenueStream) -> None:
    assert alice_ws.participant == "alice"
    ack = await alice_ws.place("OMN-A", "sell", "1.5", "100", client_order_id="w1")
    assert (ack["status"], ack["qty"]) == ("open", "1.5")
    hit = await bob_ws.place("OMN-A", "buy", "0.5", "100")
    assert hit["status"] == "filled"
    amended = await alice_ws.amend(client_order_id="w1", qty="1.2")
    assert (amended["remaining_qty"], amended["filled_qty"]) == ("0.7", "0.5")
    assert (await alice_ws.cancel(ack["order_id"]))["cancelled_qty"] == "0.7"
    assert await alice_ws.mass_cancel() == []
    with pytest.raises(ApiError) as err:
        await alice_ws.cancel(ack["order_id"])
    assert err.value.code == "UNKNOWN_ORDER"


async def test_ws_and_rest_share_client_order_ids(alice: VenueClient, alice_ws: VenueStream) -> None:
    over_ws = await alice_ws.place("OMN-A", "buy", "1", "90", client_order_id="shared")
    over_rest = await alice.place("OMN-A", "buy", "1", "90", client_order_id="shared")
    assert over_ws == over_rest


async def test_pipelined_orders_keep_their_order(alice_ws: VenueStream, venue: FakeVenue) -> None:
    acks = await asyncio.gather(*[alice_ws.place("OMN-A", "buy", "1", str(80 + i)) for i in range(50)])
    assert [a["price"] for a in acks] == [f"{80 + i}.00" for i in range(50)]
    assert [a["order_id"] for a in acks] == sorted(a["order_id"] for a in acks)
    assert len(await alice_ws.mass_cancel()) == 50


@pytest.mark.parametrize("mutate", ["bad_signature", "old_ts", "wrong_nonce", "unknown_key"])
async def test_login_failures(url: str, keys: dict[str, Keyring], mutate: str) -> None:
    conn, welcome = await _raw(url)
    nonce = welcome["nonce"]
    key = keys["alice"]
    msg = _login_msg(key, nonce)
    if mutate == "bad_signature":
        msg["signature"] = sign(keys["bob"].private_key, login_payload(msg["ts"], nonce))
    elif mutate == "old_ts":
        msg = _login_msg(key, nonce, ts=msg["ts"] - 3_600_000)
    elif mutate == "wrong_nonce":
        msg["signature"] = sign(key.private_key, login_payload(msg["ts"], "0" * 32))
    else:
        msg["key_id"] = "k-mallory"
    reply = await _ask(conn, msg)
    expected = {"bad_signature": "BAD_SIGNATURE", "old_ts": "EXPIRED_SIGNATURE", "wrong_nonce": "BAD_SIGNATURE",
                "unknown_key": "UNKNOWN_KEY"}[mutate]
    assert (reply["ok"], reply["error"]["code"], reply["req_id"]) == (False, expected, 1)
    reply = await _ask(conn, {"op": "new_order", "req_id": 2, "symbol": "OMN-A", "side": "buy", "qty": "1",
                              "price": "1"})
    assert reply["error"]["code"] == "NOT_LOGGED_IN"
    reply = await _ask(conn, _login_msg(key, nonce))  # the session stays usable
    assert reply["ok"] and reply["result"]["participant"] == "alice"
    reply = await _ask(conn, _login_msg(key, nonce))
    assert reply["error"]["code"] == "ALREADY_LOGGED_IN"
    await conn.close()


@pytest.mark.parametrize(("frame", "code"), [
    ("{not json", "MALFORMED_JSON"),
    ("[]", "MALFORMED_JSON"),
    ('{"op": NaN}', "MALFORMED_JSON"),
    ('{"req_id": 5}', "UNKNOWN_OP"),
    ('{"op": "dance"}', "UNKNOWN_OP"),
    ('{"op": "subscribe", "channel": "gossip"}', "UNKNOWN_CHANNEL"),
    ('{"op": "subscribe", "channel": "book"}', "MISSING_FIELD"),
    ('{"op": "subscribe", "channel": "book", "symbol": "OMN-Z"}', "UNKNOWN_INSTRUMENT"),
    ('{"op": "subscribe", "channel": "orders", "extra": 1}', "UNKNOWN_FIELD"),
    ('{"op": "new_order", "symbol": "OMN-A", "side": "buy", "qty": "1", "price": "1.001"}', "WRONG_TICK"),
    ('{"op": "new_order", "symbol": "OMN-A", "side": "buy", "qty": "0.05", "price": "1"}', "WRONG_LOT"),
    ('{"op": "new_order", "symbol": "OMN-A", "side": "buy", "qty": 1, "price": "1"}', "INVALID_DECIMAL"),
    ('{"op": "new_order", "symbol": "OMN-A", "side": "buy", "qty": "1", "price": "1", "x": 1}', "UNKNOWN_FIELD"),
    ('{"op": "new_order", "symbol": "OMN-A", "side": "buy", "qty": "1", "price": "1", "session": "s"}',
     "UNKNOWN_FIELD"),
    ('{"op": "cancel"}', "MISSING_FIELD"),
    ('{"op": "amend", "order_id": -4, "price": "1"}', "INVALID_FIELD"),
    ('{"op": "heartbeat", "beat": true}', "UNKNOWN_FIELD"),
])
async def test_bad_frames_get_error_replies_and_the_session_survives(
        alice_ws: VenueStream, frame: str, code: str) -> None:
    await alice_ws.send_raw(frame)
    msg = await alice_ws.next_event(where=lambda m: m.get("channel") == "error")
    assert msg["error"]["code"] == code, msg
    assert msg["error"]["message"]
    assert (await alice_ws.place("OMN-A", "buy", "1", "90"))["status"] == "open"


async def test_binary_and_oversized_frames(url: str, keys: dict[str, Keyring], venue: FakeVenue) -> None:
    app = create_app(venue, config=GatewayConfig(max_ws_message_bytes=1000))
    async with serve(app) as small:
        conn, welcome = await _raw(small)
        assert (await _ask(conn, _login_msg(keys["alice"], welcome["nonce"])))["ok"]
        await conn.send(b"\x00\x01")
        assert json.loads(await conn.recv())["error"]["code"] == "MALFORMED_JSON"
        reply = await _ask(conn, json.dumps({"op": "heartbeat", "pad": "x" * 2000}))
        assert reply["error"]["code"] == "MESSAGE_TOO_LARGE"
        assert (await _ask(conn, {"op": "heartbeat", "req_id": "hb"}))["ok"]
        await conn.close()


async def test_private_channels_are_isolated(alice_ws: VenueStream, bob_ws: VenueStream,
                                             venue: FakeVenue) -> None:
    await alice_ws.subscribe("orders", "fills", "settlements")
    await bob_ws.subscribe("orders", "fills", "settlements")
    sell = await alice_ws.place("OMN-A", "sell", "1", "100", client_order_id="s1")
    await bob_ws.place("OMN-A", "buy", "1", "100", client_order_id="b1")
    await bob_ws.place("OMN-B", "buy", "1", "50", client_order_id="b2")
    trade_id = venue.trade_log[-1].trade_id
    venue.emit_settlement(SettlementNotice(trade_id=trade_id, symbol="OMN-A", buyer="bob", seller="alice",
                                           state=SettlementState.CONFIRMED, tx_hash="0xabc", block=7))
    await asyncio.sleep(0.2)

    def drain(stream: VenueStream) -> list[dict[str, Any]]:
        out = []
        while not stream._events.empty():
            out.append(stream._events.get_nowait())
        return out

    a_msgs, b_msgs = drain(alice_ws), drain(bob_ws)
    assert [(m["channel"], m.get("type")) for m in a_msgs] == [("orders", "accepted"), ("fills", None),
                                                                ("settlements", None)]
    assert a_msgs[0]["client_order_id"] == "s1" and a_msgs[0]["order_id"] == sell["order_id"]
    assert (a_msgs[1]["side"], a_msgs[1]["liquidity"], a_msgs[1]["order_id"]) == ("sell", "maker", sell["order_id"])
    assert (a_msgs[2]["side"], a_msgs[2]["state"], a_msgs[2]["tx_hash"]) == ("sell", "confirmed", "0xabc")
    assert {m.get("client_order_id") for m in b_msgs if m["channel"] == "orders"} == {"b1", "b2"}
    assert [m["side"] for m in b_msgs if m["channel"] == "fills"] == ["buy"]
    for text in map(json.dumps, b_msgs):
        assert "alice" not in text and "s1" not in text
    for text in map(json.dumps, a_msgs):
        assert "bob" not in text and "b1" not in text and "b2" not in text


async def test_book_channel_snapshot_then_deltas(alice_ws: VenueStream, bob_ws: VenueStream) -> None:
    await alice_ws.place("OMN-A", "sell", "1", "101")
    book = await bob_ws.local_book("OMN-A")
    assert book.asks() == [(book.asks()[0][0], book.asks()[0][1], 1)] and str(book.asks()[0][0]) == "101.00"
    await alice_ws.place("OMN-A", "sell", "2", "101")
    await alice_ws.place("OMN-A", "buy", "1", "99")
    await bob_ws.place("OMN-A", "buy", "0.5", "101")
    await asyncio.sleep(0.2)
    rest = await bob_ws.request("subscribe", channel="trades", symbol="OMN-A")
    assert rest["channel"] == "trades"
    assert [(str(p), str(q), c) for p, q, c in book.asks()] == [("101.00", "2.5", 2)]
    assert [(str(p), str(q), c) for p, q, c in book.bids()] == [("99.00", "1.0", 1)]
    assert book.gaps == 0 and book.snapshots == 1


async def test_trades_and_status_channels(alice_ws: VenueStream, bob_ws: VenueStream, op: VenueClient) -> None:
    await bob_ws.subscribe("trades", symbol="OMN-A")
    await bob_ws.subscribe("status")
    snapshot = await bob_ws.next_event(where=lambda m: m["channel"] == "status")
    assert {i["symbol"]: i["status"] for i in snapshot["instruments"]} == {"OMN-A": "open", "OMN-B": "open"}
    await alice_ws.place("OMN-A", "sell", "1", "100")
    await alice_ws.place("OMN-A", "buy", "1", "100")  # self-match prevented: no trade
    await bob_ws.place("OMN-A", "buy", "0.3", "100")
    trade = await bob_ws.next_event(where=lambda m: m["channel"] == "trades")
    assert (trade["price"], trade["qty"], trade["aggressor"]) == ("100.00", "0.3", "buy")
    assert set(trade) == {"channel", "md_seq", "trade_id", "symbol", "price", "qty", "aggressor", "origin", "ts",
                          "stream_seq"}
    assert trade["origin"] == "continuous"  # the book; auction, rfq and block prints say so
    await op.set_status("OMN-A", "halted")
    update = await bob_ws.next_event(where=lambda m: m["channel"] == "status")
    assert (update["type"], update["symbol"], update["status"]) == ("update", "OMN-A", "halted")


async def test_a_call_auction_publishes_its_indicative_uncross_on_the_status_channel(
        alice_ws: VenueStream, bob_ws: VenueStream, op: VenueClient) -> None:
    await bob_ws.subscribe("status")
    await bob_ws.next_event(where=lambda m: m["channel"] == "status")  # the snapshot
    await op.set_status("OMN-A", "call")
    update = await bob_ws.next_event(where=lambda m: m["channel"] == "status")
    assert (update["type"], update["symbol"], update["status"]) == ("update", "OMN-A", "call")
    empty = await bob_ws.next_event(where=lambda m: m["channel"] == "status")
    assert (empty["type"], empty["price"], empty["volume"], empty["imbalance_side"]) == (
        "indicative", None, "0.0", None)
    assert (await alice_ws.place("OMN-A", "buy", "2", "101"))["status"] == "open"  # rests: no matching in a call
    await bob_ws.next_event(where=lambda m: m["channel"] == "status")
    await bob_ws.place("OMN-A", "sell", "0.5", "99")
    ind = await bob_ws.next_event(where=lambda m: m["channel"] == "status" and m["type"] == "indicative"
                                  and m["volume"] != "0.0")
    assert (ind["symbol"], ind["price"], ind["volume"], ind["imbalance_side"], ind["imbalance_qty"]) == (
        "OMN-A", "101.00", "0.5", "buy", "1.5")
    assert set(ind) == {"channel", "type", "symbol", "md_seq", "price", "volume", "imbalance_side", "imbalance_qty",
                        "ts", "stream_seq"}


async def test_cancel_on_disconnect_cancels_only_that_sessions_orders(
        alice: VenueClient, venue: FakeVenue) -> None:
    keep = await alice.place("OMN-A", "buy", "1", "90")  # REST: no session
    plain = await alice.connect()
    kept_ws = await plain.place("OMN-A", "buy", "1", "91")
    guarded = await alice.connect(cancel_on_disconnect=True)
    doomed = [await guarded.place("OMN-A", "buy", "1", str(p)) for p in (92, 93)]
    await guarded.close()
    await _until(lambda: len(venue.open_orders("alice")) == 2)
    assert {o.order_id for o in venue.open_orders("alice")} == {keep["order_id"], kept_ws["order_id"]}
    assert all(venue.order(d["order_id"]) is None for d in doomed)
    await plain.close()
    await asyncio.sleep(0.2)
    assert len(venue.open_orders("alice")) == 2  # no cancel-on-disconnect for the plain session


async def test_heartbeat_timeout_closes_and_cancels(venue: FakeVenue, keys: dict[str, Keyring]) -> None:
    app = create_app(venue, config=GatewayConfig(heartbeat_timeout_s=0.6))
    async with serve(app) as url, client(url, keys["alice"]) as alice:
        alive = await alice.connect(heartbeat_interval=0.15)
        await alive.place("OMN-A", "buy", "1", "90")
        silent = await alice.connect(cancel_on_disconnect=True, heartbeat_interval=0.15)
        await silent.place("OMN-A", "buy", "1", "91")
        silent.stop_heartbeats()
        await asyncio.wait_for(silent.closed.wait(), 5)
        assert (silent.close_code, silent.close_reason) == (4008, "HEARTBEAT_TIMEOUT")
        assert [o.price for o in venue.open_orders("alice")] == [9000]  # cancelled before the close
        await asyncio.sleep(0.8)
        assert not alive.closed.is_set()
        assert (await alive.place("OMN-A", "buy", "1", "89"))["status"] == "open"
        await alive.close()


async def test_login_timeout(venue: FakeVenue) -> None:
    app = create_app(venue, config=GatewayConfig(login_timeout_s=0.3))
    async with serve(app) as url:
        conn, _ = await _raw(url)
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(conn.recv(), 5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4001


async def test_ws_rate_limit(venue: FakeVenue, keys: dict[str, Keyring]) -> None:
    app = create_app(venue, config=GatewayConfig(rate_per_s=1.0, rate_burst=2))
    async with serve(app) as url, client(url, keys["alice"]) as alice:
        stream = await alice.connect(heartbeat_interval=100)
        await stream.request("heartbeat")
        await stream.request("heartbeat")
        with pytest.raises(ApiError) as err:
            await stream.place("OMN-A", "buy", "1", "90")
        assert err.value.code == "RATE_LIMITED" and err.value.retry_after is not None
        assert venue.open_orders("alice") == []
        await stream.close()


async def test_operator_session_cannot_trade_or_read_private(op: VenueClient) -> None:
    stream = await op.connect()
    with pytest.raises(ApiError) as err:
        await stream.place("OMN-A", "buy", "1", "90")
    assert err.value.code == "FORBIDDEN"
    with pytest.raises(ApiError) as err:
        await stream.subscribe("orders")
    assert err.value.code == "FORBIDDEN"
    await stream.subscribe("status")
    await stream.close()


async def _until(cond: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.02)


async def test_cancel_on_disconnect_also_covers_orders_still_in_flight(
        url: str, keys: dict[str, Keyring], venue: FakeVenue) -> None:
    conn, welcome = await _raw(url)
    assert (await _ask(conn, _login_msg(keys["alice"], welcome["nonce"], cancel_on_disconnect=True)))["ok"]
    for i in range(30):
        await conn.send(json.dumps({"op": "new_order", "symbol": "OMN-A", "side": "buy", "qty": "1",
                                    "price": str(50 + i)}))
    await conn.close()  # without waiting for a single ack
    await _until(lambda: bool(venue.submitted) and isinstance(venue.submitted[-1], MassCancel))
    assert sum(isinstance(cmd, NewOrder) for cmd in venue.submitted) == 30
    assert venue.open_orders("alice") == []


async def test_too_many_frames_before_login_closes(url: str) -> None:
    conn, _ = await _raw(url)
    for _ in range(16):
        assert (await _ask(conn, {"op": "subscribe", "channel": "status"}))["error"]["code"] == "NOT_LOGGED_IN"
    await conn.send(json.dumps({"op": "subscribe", "channel": "status"}))
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await asyncio.wait_for(conn.recv(), 5)
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4001, "TOO_MANY_FRAMES_BEFORE_LOGIN")


async def test_slow_consumer_is_dropped_not_buffered_forever(venue: FakeVenue, keys: dict[str, Keyring]) -> None:
    app = create_app(venue, config=GatewayConfig(ws_queue_max=4))
    async with serve(app) as url, client(url, keys["alice"]) as alice, client(url, keys["bob"]) as bob:
        watcher = await bob.connect()
        await watcher.local_book("OMN-A")
        for i in range(10):
            await alice.place("OMN-A", "buy", "1", str(80 + i))
        await asyncio.sleep(0.2)
        assert not watcher.closed.is_set()  # one delta at a time: the queue keeps up
        await alice.mass_cancel()  # ten deltas in one synchronous fan-out overflow a queue of 4
        await asyncio.wait_for(watcher.closed.wait(), 5)
        assert (watcher.close_code, watcher.close_reason) == (4009, "SLOW_CONSUMER")
        assert (await bob.book("OMN-A"))["bids"] == []  # the venue is unaffected
