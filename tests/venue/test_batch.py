"""``submit_batch`` (mass quote): the commands of a batch take consecutive seqs even while other
sessions' commands are entered at the same time, and a command the gate refuses is left out."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from engine import CancelOrder, Command, MassCancel, NewOrder, Result, Side
from journal import Sequencer
from tests.compliance.world import SYMBOL, World
from tests.venue.real_core import real_core
from venue.core import VenueCore

WORLD = World()


@pytest.fixture
async def venue() -> AsyncIterator[tuple[VenueCore, Sequencer]]:
    async with real_core(WORLD) as real:
        yield real.core, real.sequencer


def _bid(coid: str, qty: int = WORLD.qty) -> NewOrder:
    return NewOrder(ts=0, participant="buyer", symbol=SYMBOL, side=Side.BUY, qty=qty, price=WORLD.price,
                    client_order_id=coid, post_only=True)


async def test_a_batch_takes_consecutive_seqs_between_concurrent_commands(
        venue: tuple[VenueCore, Sequencer]) -> None:
    core, sequencer = venue
    seen: list[tuple[int, str]] = []

    def listen(seq: int, cmd: Command, _: Result) -> None:
        seen.append((seq, getattr(cmd, "participant", "")))

    sequencer.subscribe(listen)

    def other(i: int) -> CancelOrder:  # sequenced (the engine answers UNKNOWN_ORDER), never gated
        return CancelOrder(ts=0, participant="seller", order_id=10_000 + i)

    batch: list[NewOrder | CancelOrder | MassCancel] = [MassCancel(ts=0, participant="buyer", symbol=SYMBOL),
                                                        _bid("q1"), _bid("q2")]
    results = await asyncio.gather(core.submit("seller", other(1)), core.submit_batch("buyer", batch),
                                   core.submit("seller", other(2)), core.submit("seller", other(3)))
    outcomes = results[1]
    assert isinstance(outcomes, list) and len(outcomes) == 3
    assert all(o.ack is not None and o.ack.order_id is not None for o in outcomes[1:])
    buyer_seqs = [seq for seq, who in seen if who == "buyer"]
    assert len(buyer_seqs) == 3
    assert buyer_seqs == list(range(buyer_seqs[0], buyer_seqs[0] + 3)), seen


async def test_a_gate_refusal_in_a_batch_is_answered_and_the_rest_is_entered(
        venue: tuple[VenueCore, Sequencer]) -> None:
    core, _ = venue
    outcomes = await core.submit_batch("buyer", [_bid("too-big", qty=WORLD.qty * 100), _bid("fits")])
    assert outcomes[0].rejection is not None and outcomes[0].rejection.code == "INSUFFICIENT_CASH"
    assert outcomes[1].ack is not None and outcomes[1].ack.order_id is not None
    assert [v.client_order_id for v in core.open_orders("buyer")] == ["fits"]


async def test_a_batch_refuses_another_participants_commands(venue: tuple[VenueCore, Sequencer]) -> None:
    core, _ = venue
    with pytest.raises(Exception, match="participant"):
        await core.submit_batch("seller", [_bid("not-mine")])
    assert core.open_orders("buyer") == []
