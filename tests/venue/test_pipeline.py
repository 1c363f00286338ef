"""The order pipeline with the real gate and the real sequencer: funding holds are keyed by the
command seq, so concurrent identical orders, engine refusals and fills each settle the right hold
(no matching of holds to orders after the fact)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from compliance import Gatekeeper
from engine import CancelOrder, NewOrder, ResultCode, Side
from tests.compliance.world import BUYER_WALLET, CASH, SELLER_WALLET, SYMBOL, TOKEN, World
from tests.venue.real_core import real_core
from venue.core import VenueCore

WORLD = World()


@pytest.fixture
async def venue() -> AsyncIterator[tuple[VenueCore, Gatekeeper]]:
    async with real_core(WORLD) as real:
        yield real.core, real.gate


def _order(who: str, side: Side, coid: str, post_only: bool = False) -> NewOrder:
    return NewOrder(ts=0, participant=who, symbol=SYMBOL, side=side, qty=WORLD.qty, price=WORLD.price,
                    client_order_id=coid, post_only=post_only)


async def test_identical_orders_in_flight_each_keep_their_own_hold(venue: tuple[VenueCore, Gatekeeper]) -> None:
    core, gk = venue
    first, second = await asyncio.gather(core.submit("buyer", _order("buyer", Side.BUY, "same")),
                                         core.submit("buyer", _order("buyer", Side.BUY, "same")))
    assert first.ack is not None and second.ack is not None and first.ack.order_id != second.ack.order_id
    assert gk.open_holds() == 2 and gk.reserved_cash(BUYER_WALLET, CASH) == 2 * WORLD.need_cash()
    assert first.ack.order_id is not None
    cancelled = await core.submit("buyer", CancelOrder(ts=0, participant="buyer", order_id=first.ack.order_id))
    assert cancelled.result is not None and cancelled.result.code is ResultCode.OK
    assert gk.open_holds() == 1 and gk.reserved_cash(BUYER_WALLET, CASH) == WORLD.need_cash()
    sold = await core.submit("seller", _order("seller", Side.SELL, "s"))
    assert sold.ack is not None and sold.ack.filled == WORLD.qty
    assert gk.open_holds() == 0 and gk.pending_obligations() == 2  # the trade's two legs, until settled
    gk.validate()


async def test_an_order_the_engine_refuses_gives_its_hold_back(venue: tuple[VenueCore, Gatekeeper]) -> None:
    core, gk = venue
    await core.submit("seller", _order("seller", Side.SELL, "s"))
    held = gk.reserved_notes(SELLER_WALLET, TOKEN)
    refused = await core.submit("buyer", _order("buyer", Side.BUY, "b", post_only=True))
    assert refused.result is not None and refused.result.code is ResultCode.POST_ONLY_WOULD_CROSS
    assert refused.ack is not None and refused.ack.rejection is not None
    assert gk.open_holds() == 1 and gk.reserved_cash(BUYER_WALLET, CASH) == 0
    assert gk.reserved_notes(SELLER_WALLET, TOKEN) == held
    assert core.rejection_counts() == {"POST_ONLY_WOULD_CROSS": 1}
    gk.validate()


async def test_a_gate_refusal_is_answered_and_never_sequenced(venue: tuple[VenueCore, Gatekeeper]) -> None:
    core, gk = venue
    big = NewOrder(ts=0, participant="buyer", symbol=SYMBOL, side=Side.BUY, qty=WORLD.qty * 100,
                   price=WORLD.price, client_order_id="big")
    outcome = await core.submit("buyer", big)
    assert outcome.result is None and outcome.rejection is not None
    assert outcome.rejection.code == "INSUFFICIENT_CASH"
    assert core.open_orders("buyer") == [] and gk.open_holds() == 0
