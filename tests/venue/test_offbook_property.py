"""Property: whatever requests, quotes, acceptances, block sides, cancels and clock moves happen,
the gate holds exactly the funds of the live quotes and pending block sides (no hold leaks, none
is lost), every printed trade left exactly its two settlement obligations, and once everything
has expired nothing is held."""

from __future__ import annotations

import asyncio
import contextlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import Side
from market.offbook import OffBookRefused
from tests.compliance.world import World
from tests.venue.offbook_core import OffBook, off_book
from venue.listings import ListingRules

WORLD = World()
RULES = ListingRules(min_block_lots=2, block_confirm_s=20, rfq_max_ttl_s=30)
PEOPLE = ("buyer", "seller")

Op = tuple[str, int, int, int]
ops = st.lists(st.tuples(st.sampled_from(["request", "quote", "accept", "cancel", "cancel_quote", "block",
                                          "block_cancel", "wait"]),
                         st.integers(0, 1), st.integers(1, 6), st.integers(90, 130)), max_size=25)


def _holds_match(ob: OffBook) -> None:
    assert ob.gate.open_holds() == ob.core.rfqs.open_holds() + ob.core.blocks.open_holds()
    assert ob.gate.pending_obligations() == 2 * len(ob.core.trades(limit=10_000))
    ob.gate.validate()


async def _step(ob: OffBook, op: Op) -> None:
    kind, who_i, qty, price = op
    who, other = PEOPLE[who_i], PEOPLE[1 - who_i]
    rfqs, blocks = ob.core.rfqs, ob.core.blocks
    own = rfqs.rfqs_of(who, open_only=True)
    if kind == "request":
        rfqs.request(who, symbol="OMN1", side=Side.BUY if who_i == 0 else Side.SELL, qty=qty, min_qty=1, ttl_s=10)
    elif kind == "quote" and (asked := rfqs.rfqs_of(other, open_only=True)):
        rfqs.quote(who, asked[0].rfq_id, price=price, qty=min(qty, asked[0].qty), ttl_s=qty)
    elif kind == "accept" and own and own[0].quotes:
        await rfqs.accept(who, own[0].rfq_id, own[0].quotes[-1].quote_id)
    elif kind == "cancel" and own:
        rfqs.cancel(who, own[0].rfq_id)
    elif kind == "cancel_quote" and (asked := rfqs.rfqs_of(who, open_only=True)) and asked[0].quotes:
        rfqs.cancel_quote(who, asked[0].rfq_id, asked[0].quotes[-1].quote_id)
    elif kind == "block":
        await blocks.submit(who, block_id=f"b{price % 3}", symbol="OMN1", side=Side.BUY if who_i == 0 else Side.SELL,
                            price=100 + price % 2, qty=2 + qty % 2, counterparty=other)
    elif kind == "block_cancel":
        blocks.cancel(who, block_id=f"b{price % 3}", counterparty=other)
    elif kind == "wait":
        ob.clock.advance(qty * 2)


async def _scenario(steps: list[Op]) -> None:
    async with off_book(WORLD, RULES) as ob:
        for op in steps:
            with contextlib.suppress(OffBookRefused):  # a refusal changes nothing: the invariant checks it
                await _step(ob, op)
            _holds_match(ob)
        ob.clock.advance(RULES.rfq_max_ttl_s + RULES.block_confirm_s)
        ob.core.rfqs.expire()
        ob.core.blocks.expire()
        _holds_match(ob)
        assert ob.gate.open_holds() == 0


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops)
def test_holds_follow_the_live_quotes_and_pending_blocks(steps: list[Op]) -> None:
    asyncio.run(_scenario(steps))
