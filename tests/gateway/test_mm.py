"""Market-maker tools over the live gateway: mass quote, dead-man switch (driven by hand through
a recorded scheduler, no timing), market-maker protection (MMP)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from fastapi import FastAPI

from engine import Fill, Side
from gateway import GatewayConfig, create_app
from gateway.mm import MmpBook
from gateway.state import GatewayState
from tests.gateway.fakes import FakeVenue, Keyring, serve
from venueclient import ApiError, VenueClient


class _Handle:
    def __init__(self, delay: float, callback: Callable[[], None]) -> None:
        self.delay, self.callback, self.cancelled = delay, callback, False

    def cancel(self) -> None:
        self.cancelled = True


class _Timers:
    def __init__(self) -> None:
        self.handles: list[_Handle] = []

    def __call__(self, delay: float, callback: Callable[[], None]) -> _Handle:
        handle = _Handle(delay, callback)
        self.handles.append(handle)
        return handle

    def armed(self) -> list[_Handle]:
        return [h for h in self.handles if not h.cancelled]


async def _until(check: Callable[[], object]) -> None:
    for _ in range(500):  # bounded wait
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


async def _open(client: VenueClient, symbol: str = "OMN-A") -> list[int]:
    return sorted(o["order_id"] for o in await client.my_orders(symbol))


async def test_mass_quote_replaces_all_quotes_with_one_ack(alice: VenueClient, venue: FakeVenue) -> None:
    first = [await alice.place("OMN-A", "buy", "1", "99"), await alice.place("OMN-A", "sell", "1", "102")]
    other = await alice.place("OMN-B", "buy", "1", "50")
    ack = await alice.mass_quote("OMN-A", [("buy", "100", "2"), ("buy", "99.5", "3"), ("sell", "101", "2"),
                                           ("sell", "101.5", "3")], quote_id="q7")
    assert sorted(ack["cancelled"]) == sorted(o["order_id"] for o in first)
    assert ack["accepted"] == 4 and ack["quote_id"] == "q7" and all(q["ok"] for q in ack["quotes"])
    assert [q["client_order_id"] for q in ack["quotes"]] == ["q7-0", "q7-1", "q7-2", "q7-3"]
    assert await _open(alice) == sorted(q["order_id"] for q in ack["quotes"])
    assert await _open(alice, "OMN-B") == [other["order_id"]]  # another instrument is untouched
    again = await alice.mass_quote("OMN-A", [("buy", "100.5", "1")])
    assert sorted(again["cancelled"]) == sorted(q["order_id"] for q in ack["quotes"])
    assert await _open(alice) == [again["quotes"][0]["order_id"]]


async def test_mass_quote_that_crosses_itself_is_refused_and_changes_nothing(alice: VenueClient) -> None:
    before = await alice.place("OMN-A", "buy", "1", "99")
    with pytest.raises(ApiError) as err:
        await alice.mass_quote("OMN-A", [("buy", "101", "1"), ("sell", "100", "1")])
    assert err.value.code == "QUOTE_CROSSED" and err.value.status == 400
    assert await _open(alice) == [before["order_id"]]


async def test_mass_quote_levels_refused_by_the_venue_are_answered_per_level(alice: VenueClient,
                                                                            bob: VenueClient) -> None:
    await bob.place("OMN-A", "sell", "1", "100")
    ack = await alice.mass_quote("OMN-A", [("buy", "100", "1"), ("buy", "99", "1")])  # post-only would cross
    assert [q["ok"] for q in ack["quotes"]] == [False, True]
    assert ack["quotes"][0]["error"]["code"] == "POST_ONLY_WOULD_CROSS"


async def test_mass_quote_over_the_websocket(alice: VenueClient) -> None:
    async with await alice.connect() as ws:
        ack = await ws.mass_quote("OMN-A", [("buy", "99", "1"), ("sell", "101", "1")])
        assert ack["accepted"] == 2
        with pytest.raises(ApiError) as err:
            await ws.mass_quote("OMN-A", [("buy", "99.001", "1")])
        assert err.value.code == "WRONG_TICK"
    assert len(await _open(alice)) == 2


def _gw(venue: FakeVenue, config: GatewayConfig) -> tuple[FastAPI, GatewayState]:
    app = create_app(venue, config=config)
    state = app.state.gateway
    assert isinstance(state, GatewayState)
    return app, state


async def test_cancel_after_cancels_everything_when_not_refreshed(venue: FakeVenue, config: GatewayConfig,
                                                                  keys: dict[str, Keyring]) -> None:
    app, gw = _gw(venue, config)
    timers = _Timers()
    gw.mm.scheduler = timers
    async with serve(app) as url, VenueClient(url, keys["alice"].key_id, keys["alice"].private_key) as alice:
        await alice.place("OMN-A", "buy", "1", "99")
        await alice.place("OMN-B", "sell", "1", "51")
        armed = await alice.cancel_after(60)
        assert armed["armed"] is True and armed["trigger_time"] - armed["current_time"] == pytest.approx(60)
        assert [h.delay for h in timers.armed()] == [60.0]
        await alice.cancel_after(30)  # refresh: the old timer is cancelled, one new one
        assert [h.delay for h in timers.armed()] == [30.0] and len(timers.handles) == 2
        timers.armed()[0].callback()  # the timeout runs out
        await _until(lambda: not venue.open_orders("alice"))
        assert gw.mm.dead_man_fired == 1


async def test_cancel_after_zero_disarms(venue: FakeVenue, config: GatewayConfig, keys: dict[str, Keyring]) -> None:
    app, gw = _gw(venue, config)
    timers = _Timers()
    gw.mm.scheduler = timers
    async with serve(app) as url, VenueClient(url, keys["alice"].key_id, keys["alice"].private_key) as alice:
        await alice.place("OMN-A", "buy", "1", "99")
        async with await alice.connect() as ws:
            await ws.cancel_after(10)
            assert (await ws.cancel_after(0))["armed"] is False
        assert timers.armed() == []
        with pytest.raises(ApiError) as err:
            await alice.cancel_after(86_401)
        assert err.value.status == 400
        assert len(venue.open_orders("alice")) == 1


async def test_mmp_fill_limit_cancels_quotes_freezes_and_tells_the_private_stream(
        alice: VenueClient, bob: VenueClient, venue: FakeVenue) -> None:
    state = await alice.set_mmp("OMN-A", interval_ms=60_000, freeze_ms=0, fills_limit=2)
    assert state["configured"] is True and state["frozen"] is False
    async with await alice.connect() as ws:
        await ws.subscribe("mmp")
        await alice.mass_quote("OMN-A", [("buy", "100", "1"), ("buy", "99", "1"), ("buy", "98", "1")])
        other = await alice.place("OMN-B", "buy", "1", "50")
        await bob.place("OMN-A", "sell", "2", "99", tif="ioc")  # two maker fills for alice
        event = await ws.next_event(timeout=5.0, where=lambda m: m.get("channel") == "mmp")
        assert event["type"] == "mmp_triggered" and event["symbol"] == "OMN-A" and event["reason"] == "fills_limit"
        await _until(lambda: not venue.open_orders("alice", "OMN-A"))
        assert await _open(alice, "OMN-B") == [other["order_id"]]
        for attempt in (alice.place("OMN-A", "buy", "1", "97"), alice.mass_quote("OMN-A", [("buy", "97", "1")])):
            with pytest.raises(ApiError) as err:
                await attempt
            assert err.value.code == "MMP_FROZEN"
        assert (await alice.mmp("OMN-A"))["frozen"] is True
        await alice.place("OMN-B", "buy", "1", "49")  # other instruments still quote
        assert (await alice.reset_mmp("OMN-A"))["frozen"] is False
        await alice.place("OMN-A", "buy", "1", "97")


def _fill(qty: int, maker: str = "mm") -> Fill:
    return Fill(seq=1, md_seq=1, ts=0, trade_id=1, symbol="S", price=1, qty=qty, aggressor=Side.SELL,
                maker_order_id=1, maker_participant=maker, maker_remaining=0, taker_order_id=2,
                taker_participant="t", taker_remaining=0)


def test_mmp_window_and_freeze_follow_the_clock() -> None:
    now = [0]
    book = MmpBook(clock=lambda: now[0])
    book.configure("mm", "S", interval_ms=1_000, qty_limit=10, fills_limit=None, freeze_ms=500)
    assert book.on_fill(_fill(6)) is None
    now[0] = 1_000_000_000  # the first fill left the 1 s window
    assert book.on_fill(_fill(6)) is None
    assert book.on_fill(_fill(3, maker="other")) is None  # another maker does not count
    trigger = book.on_fill(_fill(4))
    assert trigger is not None and trigger.reason == "qty_limit" and trigger.freeze_ms == 500
    assert book.refusal("mm", "S") is not None and book.refusal("mm", "T") is None
    now[0] += 499_999_999
    assert book.frozen("mm", "S")
    now[0] += 1
    assert not book.frozen("mm", "S") and book.refusal("mm", "S") is None
