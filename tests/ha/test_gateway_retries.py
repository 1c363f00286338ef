"""A cancel forwarded by a gateway, journaled by a leader that then died, retried under its request
id at the new leader: answered with the first outcome (the request id travels with the command in
the stream message's headers; the standby kept the engine result of that command), not executed
again as what it is then (an unknown order). Real NATS, real sequencers and cores, no processes."""

from __future__ import annotations

import asyncio
from pathlib import Path

from engine import AddInstrument, CancelOrder, Engine, NewOrder, ResultCode, Side
from journal import Sequencer
from journal.nats import NatsJournal, parse_url
from market import wire
from tests.gateway.fakes import make_listing
from venue.core import VenueCore
from venue.ha import Follower
from venue.remote import LeaderResponder, subjects

LISTING = make_listing("OMN-R")


def _core(engine: Engine, sequencer: Sequencer, journal: NatsJournal) -> VenueCore:
    return VenueCore(engine=engine, sequencer=sequencer, listings=[LISTING], positions=journal.position)


async def _ask(responder: LeaderResponder, stream: str, request: dict[str, object]) -> object:
    assert responder.nc is not None
    return wire.loads((await responder.nc.request(subjects(stream)[0], wire.dumps(request), timeout=10)).data)


async def test_a_cancel_retried_at_a_new_leader_gets_the_first_outcome(stream_url: str, tmp_path: Path) -> None:
    servers, stream = parse_url(stream_url)
    first = NatsJournal.open(stream_url, tmp_path / "a")
    engine_a = Engine()
    sequencer_a = Sequencer(engine_a, first)
    core_a = _core(engine_a, sequencer_a, first)
    await sequencer_a.start()
    await sequencer_a.submit(AddInstrument(ts=0, spec=LISTING.spec))
    standby = await asyncio.to_thread(NatsJournal.open, stream_url, tmp_path / "b")
    follower = await asyncio.to_thread(Follower, standby)  # following the stream from here on
    leader_a = LeaderResponder(core_a, servers, stream)
    await leader_a.start()
    order = NewOrder(ts=0, participant="p", symbol=LISTING.symbol, side=Side.BUY, qty=1, price=100,
                     client_order_id="c-1")
    placed = await _ask(leader_a, stream, {"op": "submit", "args": ["p", order], "kw": {}, "id": "gw-1"})
    assert isinstance(placed, dict)
    order_id = placed["ok"].result.order_id
    cancel = {"op": "submit", "args": ["p", CancelOrder(ts=0, participant="p", order_id=order_id)], "kw": {},
              "id": "gw-2"}
    answered = await _ask(leader_a, stream, cancel)
    assert isinstance(answered, dict) and answered["ok"].result.code is ResultCode.OK
    # the leader dies after journaling the cancel (its answer lost on the way to the gateway)
    await leader_a.stop()
    await sequencer_a.stop()
    first.close()

    await asyncio.to_thread(follower.catch_up)
    assert "gw-2" in follower.answers and "gw-1" not in follower.answers  # only cancels/amends are tagged
    await asyncio.to_thread(standby.claim)
    sequencer_b = Sequencer(follower.engine, standby)
    await sequencer_b.start()
    leader_b = LeaderResponder(_core(follower.engine, sequencer_b, standby), servers, stream,
                               earlier=follower.answers)
    await leader_b.start()
    try:
        retried = await _ask(leader_b, stream, cancel)  # the gateway's retry, same request id
        assert isinstance(retried, dict)
        assert retried["ok"] == answered["ok"]  # the same outcome: cancelled, with its event
        again = await _ask(leader_b, stream, {**cancel, "id": "gw-3"})  # a new request: executed, now unknown
        assert isinstance(again, dict) and again["ok"].result.code is not ResultCode.OK
        assert sequencer_b.applied_seq == follower.applied_seq + 1  # the retry was not journaled again
    finally:
        await leader_b.stop()
        await sequencer_b.stop()
        standby.close()
