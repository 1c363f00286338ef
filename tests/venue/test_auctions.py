"""Call auctions on a schedule (``venue.auctions``): periodic calls per listing, resumes through a
call, the reference price of the uncross, and auction trades on the real pipeline (funding holds
released, obligations for settlement)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from fractions import Fraction

import pytest

from engine import (
    AddInstrument,
    Engine,
    Fill,
    IndicativeUncross,
    InstrumentSpec,
    InstrumentStatus,
    NewOrder,
    Result,
    SetInstrumentStatus,
    Side,
    TradeOrigin,
    Uncross,
)
from journal import Sequencer
from tests.compliance.world import SYMBOL, World
from tests.venue.real_core import real_core
from venue.auctions import AuctionClock, auction_clock
from venue.listings import ListingRules


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Venue:
    """A real engine behind the real sequencer (no journal); every result kept."""

    def __init__(self, engine: Engine, sequencer: Sequencer) -> None:
        self.engine = engine
        self.sequencer = sequencer
        self.results: list[tuple[object, Result]] = []
        sequencer.subscribe(lambda _seq, cmd, result: self.results.append((cmd, result)))

    async def order(self, who: str, side: Side, qty: int, price: int, symbol: str = "PER") -> Result:
        return await self.sequencer.submit(NewOrder(ts=0, participant=who, symbol=symbol, side=side, qty=qty,
                                                    price=price))

    def status(self, symbol: str) -> InstrumentStatus:
        return self.engine.l2(symbol, 0).status

    def uncrosses(self) -> list[Uncross]:
        return [cmd for cmd, _ in self.results if isinstance(cmd, Uncross)]


@pytest.fixture
async def venue() -> AsyncIterator[Venue]:
    engine = Engine()
    sequencer = Sequencer(engine, None, clock=lambda: 10**18)
    await sequencer.start()
    for symbol in ("PER", "CONT", "HALT"):
        await sequencer.submit(AddInstrument(ts=0, spec=InstrumentSpec(symbol=symbol, tick_size=1, lot_size=1)))
    await sequencer.submit(SetInstrumentStatus(ts=0, symbol="HALT", status=InstrumentStatus.HALTED))
    try:
        yield Venue(engine, sequencer)
    finally:
        await sequencer.stop()


def _clock(v: Venue, clock: Clock, nav: dict[str, Fraction] | None = None) -> AuctionClock:
    auctions = AuctionClock(v.sequencer, v.engine, interval={"PER": 60.0}.get, clock=clock, resume_call_s=10.0,
                            nav=(nav or {}).get)
    v.sequencer.subscribe(lambda _seq, _cmd, result: [auctions.on_event(e) for e in result.events])
    return auctions


async def test_a_periodic_listing_trades_in_calls_uncrossed_on_schedule(venue: Venue) -> None:
    clock = Clock()
    auctions = _clock(venue, clock, nav={"PER": Fraction(2015, 20)})  # NAV 100.75 ticks -> reference 101
    assert await auctions.step() == 1  # PER enters a call; CONT stays continuous, HALT is left alone
    assert [venue.status(s) for s in ("PER", "CONT", "HALT")] == [
        InstrumentStatus.CALL, InstrumentStatus.OPEN, InstrumentStatus.HALTED]
    placed = await venue.order("alice", Side.BUY, 5, 104)
    assert not any(isinstance(e, Fill) for e in placed.events)
    assert any(isinstance(e, IndicativeUncross) for e in (await venue.order("bob", Side.SELL, 5, 98)).events)
    clock.now += 59
    assert await auctions.step() == 0 and auctions.next_due() == pytest.approx(1.0)
    clock.now += 1
    assert await auctions.step() == 1
    (uncross,) = venue.uncrosses()
    assert (uncross.reference_price, uncross.then) == (101, InstrumentStatus.CALL)
    fills = [e for _, r in venue.results[-1:] for e in r.events if isinstance(e, Fill)]
    assert [(f.price, f.qty, f.origin) for f in fills] == [(98, 5, TradeOrigin.AUCTION)]  # nearest 101 of 98/104
    assert venue.status("PER") is InstrumentStatus.CALL  # the next call started at once
    clock.now += 30
    assert await auctions.step() == 0  # the new call runs its own minute


async def test_an_instrument_put_in_a_call_reopens_after_the_resume_call(venue: Venue) -> None:
    clock = Clock()
    auctions = _clock(venue, clock)
    await venue.order("alice", Side.BUY, 2, 100, symbol="CONT")
    await venue.order("bob", Side.SELL, 2, 100, symbol="CONT")  # a continuous trade: the last price, 100
    await venue.sequencer.submit(SetInstrumentStatus(ts=0, symbol="CONT", status=InstrumentStatus.HALTED))
    await venue.sequencer.submit(SetInstrumentStatus(ts=0, symbol="CONT", status=InstrumentStatus.CALL))
    await auctions.step()
    await venue.order("carol", Side.BUY, 3, 106, symbol="CONT")
    await venue.order("dave", Side.SELL, 3, 102, symbol="CONT")
    clock.now += 9
    await auctions.step()
    assert venue.uncrosses() == []
    clock.now += 1
    await auctions.step()
    (uncross,) = [u for u in venue.uncrosses() if u.symbol == "CONT"]
    assert (uncross.reference_price, uncross.then) == (100, InstrumentStatus.OPEN)  # the last trade
    assert venue.status("CONT") is InstrumentStatus.OPEN
    last = venue.results[-1][1]
    assert [(f.price, f.origin) for f in last.events if isinstance(f, Fill)] == [(102, TradeOrigin.AUCTION)]


async def test_the_venue_wiring_reads_the_listing_rules_and_resumes_through_calls(venue: Venue) -> None:
    class Monitor:
        resume_status = InstrumentStatus.OPEN

        def rules(self, symbol: str) -> ListingRules | None:
            return ListingRules(call_interval_s=30) if symbol == "PER" else ListingRules()

        def nav(self, symbol: str) -> Fraction | None:
            return None

    monitor = Monitor()
    listeners: list[object] = []
    auctions = auction_clock(venue.sequencer, venue.engine, monitor, listeners.append, resume_call_s=5)
    assert listeners == [auctions.on_event] and monitor.resume_status is InstrumentStatus.CALL
    assert auctions.duration("PER") == 30 and auctions.duration("CONT") == 5
    untouched = Monitor()
    auction_clock(venue.sequencer, venue.engine, untouched, listeners.append)
    assert untouched.resume_status is InstrumentStatus.OPEN  # without resume_call_s: straight back to open


async def test_auction_trades_go_through_the_pipeline_like_any_trade() -> None:
    world = World()
    async with real_core(world) as real:
        core, gate = real.core, real.gate
        await core.set_status(SYMBOL, InstrumentStatus.CALL, operator="op")
        buy = await core.submit("buyer", NewOrder(ts=0, participant="buyer", symbol=SYMBOL, side=Side.BUY,
                                                  qty=world.qty, price=world.price + 1))
        sell = await core.submit("seller", NewOrder(ts=0, participant="seller", symbol=SYMBOL, side=Side.SELL,
                                                    qty=world.qty, price=world.price - 1))
        assert buy.ack is not None and sell.ack is not None and buy.ack.filled == 0 and sell.ack.filled == 0
        assert gate.open_holds() == 2  # both rest through the call, funded
        clock = Clock()
        auctions = AuctionClock(real.sequencer, real.sequencer.engine, interval=lambda _s: None, clock=clock,
                                resume_call_s=1.0)
        await auctions.step()
        clock.now += 1
        assert await auctions.step() == 1
        (trade,) = core.trades(limit=10)
        assert trade.qty == world.qty and trade.price in (world.price - 1, world.price + 1)
        assert gate.open_holds() == 0 and gate.pending_obligations() == 2  # the trade's two legs, until settled
        gate.validate()
        assert core.l2(SYMBOL, 0).status is InstrumentStatus.OPEN
