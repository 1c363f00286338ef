"""The ``reference`` stream and the NAV/premium fields on trade prints and fills (``gateway.streams.Hub``
with the hooks ``gateway.reference.attach_reference`` sets), over the real core and engine."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from engine import Fill, NewOrder, Side
from gateway import GatewayConfig, create_app
from gateway.state import GatewayState
from gateway.streams import PUBLIC_CHANNELS, Hub
from tests.gateway.conftest import client
from tests.gateway.fakes import FakeVenue, Keyring, make_listing, serve
from venueclient import ApiError


class Recorder:
    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    def push(self, text: str) -> None:
        self.messages.append(json.loads(text))


def _order(who: str, side: Side) -> NewOrder:
    return NewOrder(ts=0, participant=who, symbol="OMN-A", side=side, qty=10, price=100_000)


def test_reference_is_a_public_channel() -> None:
    assert "reference" in PUBLIC_CHANNELS


async def test_reference_snapshot_then_updates_and_unsubscribe() -> None:
    venue = FakeVenue([make_listing()], [])
    hub = Hub(venue)
    figures = {"nav_per_note": "1000.00"}
    hub.reference_view = lambda symbol: {"symbol": symbol, **figures}
    sub = Recorder()
    hub.subscribe_reference(sub, "OMN-A")
    figures["nav_per_note"] = "1001.00"
    hub.publish_reference("OMN-A")
    hub.publish_reference("OTHER")  # nobody subscribed: nothing sent
    assert [(m["type"], m["reference"]["nav_per_note"]) for m in sub.messages] == [
        ("snapshot", "1000.00"), ("update", "1001.00")]
    hub.unsubscribe(sub, "reference", symbol="OMN-A")
    hub.publish_reference("OMN-A")
    assert len(sub.messages) == 2


async def test_trade_prints_and_fills_carry_the_premium_to_nav() -> None:
    venue = FakeVenue([make_listing()], [])
    hub = Hub(venue)
    hub.trade_extras = lambda fill: {"nav": "990.00", "premium": "0.010101", "trade": fill.trade_id}
    hub.start()
    try:
        trades, fills = Recorder(), Recorder()
        hub.subscribe_trades(trades, "OMN-A")
        hub.subscribe_private(fills, "bob", "fills")
        await venue.submit("alice", _order("alice", Side.SELL))
        out = await venue.submit("bob", _order("bob", Side.BUY))
        assert out.result is not None
        (fill,) = [e for e in out.result.events if isinstance(e, Fill)]
        (print_,) = trades.messages
        assert print_["premium"] == "0.010101" and print_["nav"] == "990.00" and print_["trade"] == fill.trade_id
        assert fills.messages and all(m["premium"] == "0.010101" for m in fills.messages)
    finally:
        hub.stop()


async def test_reference_channel_over_the_websocket(keys: dict[str, Keyring]) -> None:
    """A client subscribes to ``reference`` like to ``book``: a snapshot, then an update per change."""
    venue = FakeVenue([make_listing()], [k.api_key for k in keys.values()])
    app = create_app(venue, config=GatewayConfig(rate_per_s=1000.0, rate_burst=1000))
    state = app.state.gateway
    assert isinstance(state, GatewayState)
    hub = state.hub
    figures = {"nav_per_note": "1000.00"}
    hub.reference_view = lambda symbol: {"symbol": symbol, **figures}
    async with serve(app) as url, client(url, keys["alice"]) as alice:
        stream = await alice.connect()
        try:
            await stream.subscribe("reference", symbol="OMN-A")
            snapshot = await asyncio.wait_for(stream._events.get(), 5)
            figures["nav_per_note"] = "1001.00"
            hub.publish_reference("OMN-A")
            update = await asyncio.wait_for(stream._events.get(), 5)
            assert [(m["channel"], m["type"], m["reference"]["nav_per_note"]) for m in (snapshot, update)] == [
                ("reference", "snapshot", "1000.00"), ("reference", "update", "1001.00")]
            with pytest.raises(ApiError) as err:
                await stream.subscribe("reference")
            assert err.value.code == "MISSING_FIELD"
        finally:
            await stream.close()
