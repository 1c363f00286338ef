"""Websocket order entry batched per read pass (issue 13, speed): every frame the server already
holds for a session is handled in one pass and its new orders reach the venue as one batch, with
one task per batch rather than a task and a future per order. Behaviour only: replies, their
order, what the venue saw; never elapsed time."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
import websockets

from engine import CancelOrder, MassCancel, NewOrder
from gateway import GatewayConfig, create_app
from gateway.ports import Outcome
from tests.gateway.conftest import client
from tests.gateway.fakes import FakeVenue, Keyring, make_listing, serve
from venueclient.signing import login_payload, sign

BURST = 40


class BatchSpy(FakeVenue):
    """Records the size of every batch the gateway hands to the venue."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.batches: list[int] = []

    async def submit_batch(self, participant: str,
                           cmds: Sequence[NewOrder | CancelOrder | MassCancel]) -> list[Outcome]:
        self.batches.append(len(cmds))
        return await super().submit_batch(participant, cmds)


@pytest.fixture
def spy(keys: dict[str, Keyring]) -> BatchSpy:
    return BatchSpy([make_listing("OMN-A"), make_listing("OMN-B")], [k.api_key for k in keys.values()])


async def _logged_in(url: str, key: Keyring) -> Any:
    conn = await websockets.connect("ws" + url[4:] + "/v1/ws")
    welcome = json.loads(await conn.recv())
    ts = time.time_ns() // 1_000_000
    await conn.send(json.dumps({"op": "login", "req_id": 0, "key_id": key.key_id, "ts": ts,
                                "signature": sign(key.private_key, login_payload(ts, welcome["nonce"]))}))
    assert json.loads(await asyncio.wait_for(conn.recv(), 5))["ok"]
    return conn


async def _burst(conn: Any, messages: list[dict[str, Any]]) -> dict[Any, dict[str, Any]]:
    """Sends every message back to back (no reply awaited in between), then reads one reply per
    message; returns them by req_id (each answered exactly once)."""
    for msg in messages:
        await conn.send(json.dumps(msg))
    replies: dict[Any, dict[str, Any]] = {}
    for _ in range(len(messages)):
        reply = json.loads(await asyncio.wait_for(conn.recv(), 10))
        assert reply["req_id"] not in replies, reply
        replies[reply["req_id"]] = reply
    return replies


def _order(i: int, **extra: Any) -> dict[str, Any]:
    return {"op": "new_order", "req_id": i, "symbol": "OMN-A", "side": "buy", "qty": "1", "price": str(50 + i % 40),
            **extra}


async def test_a_burst_of_orders_reaches_the_venue_in_batches_with_one_task_per_batch(
        spy: BatchSpy, keys: dict[str, Keyring]) -> None:
    """Before: one task (plus one future) per order and one ``submit`` each; the venue never saw a
    batch from the websocket."""
    async with serve(create_app(spy, config=GatewayConfig(rate_per_s=1000, rate_burst=1000))) as url:
        conn = await _logged_in(url, keys["alice"])
        loop = asyncio.get_running_loop()
        created = 0
        default_factory = loop.get_task_factory()

        def counting(lp: asyncio.AbstractEventLoop, coro: Any, **kw: Any) -> Any:
            nonlocal created
            frame = getattr(coro, "cr_frame", None)
            if frame is not None and str(frame.f_globals.get("__name__", "")).startswith("gateway"):
                created += 1  # the gateway's tasks (the test's own client makes some too)
            return default_factory(lp, coro, **kw) if default_factory else asyncio.Task(coro, loop=lp, **kw)

        loop.set_task_factory(counting)
        try:
            replies = await _burst(conn, [_order(i) for i in range(BURST)])
        finally:
            loop.set_task_factory(default_factory)
        await conn.close()
    assert all(r["ok"] and r["op"] == "new_order" for r in replies.values()), replies
    ids = [replies[i]["result"]["order_id"] for i in range(BURST)]
    assert ids == sorted(ids)  # the venue took them in the order they were sent
    assert sum(spy.batches) == BURST
    assert max(spy.batches) > 1, spy.batches
    assert 0 < created <= len(spy.batches), f"{created} gateway tasks for {BURST} orders"


async def test_a_burst_keeps_order_idempotency_and_per_order_errors(spy: BatchSpy, keys: dict[str, Keyring]) -> None:
    """In one pass: a cancel by client order id right after its new order finds it; a repeat of a
    client order id gets the first order's reply; a different order under a used id and an order
    on an unknown instrument are refused on their own, the rest go through."""
    async with serve(create_app(spy, config=GatewayConfig(rate_per_s=1000, rate_burst=1000))) as url:
        conn = await _logged_in(url, keys["alice"])
        replies = await _burst(conn, [
            _order(1, client_order_id="c-1"),
            _order(2, client_order_id="c-2"),
            _order(3, client_order_id="c-1", price="51"),  # the same order again (as _order(1))
            _order(4, client_order_id="c-2", qty="2"),  # a different order under a used id
            _order(5, symbol="NOPE"),
            {"op": "cancel", "req_id": 6, "client_order_id": "c-1"},
            _order(7),
        ])
        await conn.close()
    assert replies[1]["ok"] and replies[2]["ok"] and replies[7]["ok"]
    assert replies[3].get("result") == replies[1]["result"], replies[3]
    assert replies[4]["error"]["code"] == "CLIENT_ORDER_ID_REUSED"
    assert replies[5]["error"]["code"] == "UNKNOWN_INSTRUMENT"
    assert replies[6]["ok"] and replies[6]["result"]["order_id"] == replies[1]["result"]["order_id"]
    assert replies[6]["result"]["status"] == "cancelled"
    assert [type(c).__name__ for c in spy.submitted].count("NewOrder") == 3
    assert replies[7]["result"]["order_id"] > replies[1]["result"]["order_id"]  # the cancel did not reorder them


async def test_a_burst_on_a_frozen_instrument_refuses_only_its_orders(spy: BatchSpy, url_for_spy: str,
                                                                     keys: dict[str, Keyring]) -> None:
    """Market-maker protection applies to each order of a batch on its own."""
    async with client(url_for_spy, keys["alice"]) as alice, client(url_for_spy, keys["bob"]) as bob:
        await alice.set_mmp("OMN-A", interval_ms=60_000, freeze_ms=0, fills_limit=1)
        await alice.place("OMN-A", "buy", "1", "60")
        await bob.place("OMN-A", "sell", "1", "60", tif="ioc")  # one maker fill: frozen
        for _ in range(200):
            if (await alice.mmp("OMN-A"))["frozen"]:
                break
            await asyncio.sleep(0.01)
        conn = await _logged_in(url_for_spy, keys["alice"])
        replies = await _burst(conn, [_order(1), _order(2, symbol="OMN-B"), _order(3)])
        await conn.close()
    assert replies[1]["error"]["code"] == replies[3]["error"]["code"] == "MMP_FROZEN"
    assert replies[2]["ok"], replies[2]


@pytest.fixture
async def url_for_spy(spy: BatchSpy) -> AsyncIterator[str]:
    async with serve(create_app(spy, config=GatewayConfig(rate_per_s=1000, rate_burst=1000))) as base:
        yield base
