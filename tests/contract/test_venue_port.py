"""One ``VenuePort`` contract, run against every implementation (exchange-core's OrderBookBaseTest
idea): the real ``venue.core.VenueCore`` over a real ``journal.Sequencer`` (no journal, no store,
no chain) and the gateway suite's ``FakeVenue``. A fake that drifts from the core fails here."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from engine import (
    AddInstrument,
    AmendOrder,
    CancelOrder,
    Engine,
    Event,
    Fill,
    InstrumentStatus,
    MassCancel,
    NewOrder,
    OrderCancelled,
    ResultCode,
    Side,
)
from gateway.ports import VenuePort
from journal import Sequencer
from market.model import OrderStatus, SettlementState
from tests.gateway.fakes import FakeVenue, make_key, make_listing
from venue.core import VenueCore

SYMBOL = "OMN-A"


@pytest.fixture(params=["core", "gateway-fake"])
async def venue(request: pytest.FixtureRequest) -> AsyncIterator[VenuePort]:
    listing = make_listing(SYMBOL)
    keys = [make_key("alice").api_key, make_key("bob").api_key]
    if request.param == "gateway-fake":
        yield FakeVenue([listing], keys)
        return
    engine = Engine()
    sequencer = Sequencer(engine, None)
    await sequencer.start()
    await sequencer.submit(AddInstrument(ts=0, spec=listing.spec))
    try:
        yield VenueCore(engine=engine, sequencer=sequencer, listings=[listing], keys=keys)
    finally:
        await sequencer.stop()


def _order(who: str, side: Side, qty: int, price: int, coid: str) -> NewOrder:
    return NewOrder(ts=0, participant=who, symbol=SYMBOL, side=side, qty=qty, price=price, client_order_id=coid)


async def test_reference_reads(venue: VenuePort) -> None:
    assert [listing.symbol for listing in venue.listings()] == [SYMBOL]
    assert venue.listing("NOPE") is None
    key = venue.api_key("k-alice")
    assert key is not None and key.participant == "alice"
    assert venue.api_key("k-nobody") is None


async def test_a_resting_order_is_acknowledged_and_readable(venue: VenuePort) -> None:
    outcome = await venue.submit("alice", _order("alice", Side.SELL, 5, 100, "s1"))
    assert outcome.rejection is None and outcome.result is not None and outcome.result.code is ResultCode.OK
    ack = outcome.ack
    assert ack is not None and ack.ok and ack.order_id == outcome.result.order_id
    assert (ack.client_order_id, ack.status, ack.filled, ack.remaining, ack.side) == (
        "s1", OrderStatus.OPEN, 0, 5, Side.SELL)
    view = venue.order(ack.order_id)
    assert view is not None and (view.participant, view.remaining) == ("alice", 5)
    assert [v.order_id for v in venue.open_orders("alice")] == [ack.order_id]
    assert venue.open_orders("bob") == []
    assert venue.l2(SYMBOL).asks[0].qty == 5


async def test_a_crossing_order_trades_and_every_reader_agrees(venue: VenuePort) -> None:
    events: list[Event] = []
    venue.subscribe_events(events.append)
    await venue.submit("alice", _order("alice", Side.SELL, 5, 100, "s1"))
    outcome = await venue.submit("bob", _order("bob", Side.BUY, 3, 101, "b1"))
    ack = outcome.ack
    assert ack is not None and (ack.status, ack.filled, ack.remaining) == (OrderStatus.FILLED, 3, 0)
    assert [(f.price, f.qty, f.taker) for f in ack.fills] == [(100, 3, True)]
    [trade] = venue.trades(symbol=SYMBOL)
    assert (trade.buyer, trade.seller, trade.price, trade.qty, trade.aggressor) == ("bob", "alice", 100, 3, Side.BUY)
    assert trade.settlement is SettlementState.PENDING
    assert venue.trades(participant="alice") == [trade] and venue.trades(participant="carol") == []
    fills = [e for e in events if isinstance(e, Fill)]
    assert [f.trade_id for f in fills] == [trade.trade_id]
    assert [e.seq for e in events] == sorted(e.seq for e in events)


async def test_amend_cancel_and_mass_cancel(venue: VenuePort) -> None:
    placed = await venue.submit("alice", _order("alice", Side.SELL, 5, 100, "s1"))
    assert placed.ack is not None and placed.ack.order_id is not None
    oid = placed.ack.order_id
    amended = await venue.submit("alice", AmendOrder(ts=0, participant="alice", order_id=oid, price=102, qty=4))
    ack = amended.ack
    assert ack is not None and (ack.order_id, ack.client_order_id, ack.price, ack.qty, ack.remaining) == (
        oid, "s1", 102, 4, 4)
    cancelled = await venue.submit("alice", CancelOrder(ts=0, participant="alice", order_id=oid))
    assert cancelled.result is not None and cancelled.result.code is ResultCode.OK
    assert [e.order_id for e in cancelled.result.events if isinstance(e, OrderCancelled)] == [oid]
    again = await venue.submit("alice", CancelOrder(ts=0, participant="alice", order_id=oid))
    assert again.result is not None and again.result.code is ResultCode.UNKNOWN_ORDER
    for i in range(3):
        await venue.submit("alice", _order("alice", Side.BUY, 1, 90 + i, f"b{i}"))
    mass = await venue.submit("alice", MassCancel(ts=0, participant="alice"))
    assert mass.result is not None and len([e for e in mass.result.events if isinstance(e, OrderCancelled)]) == 3
    assert venue.open_orders("alice") == []


async def test_engine_rejections_come_back_as_results_with_a_rejected_ack(venue: VenuePort) -> None:
    outcome = await venue.submit("alice", _order("alice", Side.SELL, 5, 0, "bad"))
    assert outcome.result is not None and outcome.result.code is ResultCode.INVALID_PRICE
    assert outcome.ack is not None and outcome.ack.rejection is not None
    assert outcome.ack.rejection.code == "INVALID_PRICE" and outcome.ack.client_order_id == "bad"


async def test_a_halted_instrument_refuses_new_orders(venue: VenuePort) -> None:
    status = await venue.set_status(SYMBOL, InstrumentStatus.HALTED, operator="ops")
    assert status.result is not None and status.result.code is ResultCode.OK
    outcome = await venue.submit("alice", _order("alice", Side.SELL, 1, 100, "h1"))
    assert outcome.result is not None and outcome.result.code is ResultCode.INSTRUMENT_HALTED


async def test_a_command_for_another_participant_never_reaches_the_engine(venue: VenuePort) -> None:
    with pytest.raises(Exception):  # noqa: B017 - the core raises CoreError, the fake AssertionError
        await venue.submit("bob", _order("alice", Side.SELL, 1, 100, "x"))
    assert venue.open_orders("alice") == [] and venue.open_orders("bob") == []
